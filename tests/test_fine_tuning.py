"""The fine-tuning habits: a frozen encoder, its own learning rate, a weight average that
validation scores and best.pt holds, and gradient accumulation equal to a larger batch."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import timm
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from tests.helpers import compose, run_command, tiny_overrides
from unetcli.core.hardware import Runtime
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses.bce import BCELoss
from unetcli.models import UNet
from unetcli.training.ema import WeightAverage
from unetcli.training.freezing import EncoderFreeze
from unetcli.training.schedulers import Schedule
from unetcli.training.step import TrainingStep, build_optimizer

CPU = Runtime(torch.device("cpu"), None, False, 0, False)
ENCODER = "test_resnet"


def state(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / "checkpoints" / name, weights_only=True)


def timm_overrides(root: Path, weights: Path) -> list[str]:
    base = [o for o in tiny_overrides(root, objects=6) if not o.startswith("model.")]
    return [
        *base,
        "model=unet_timm",
        f"model.encoder={ENCODER}",
        f"model.pretrained={weights}",
        "model.decoder_channels=[8,8,8,8,8]",
        "trainer.batch_size=2",
    ]


def test_frozen_encoder_lr_factor_and_accumulation_in_one_run(tmp_path, capsys):
    torch.manual_seed(3)
    pretrained = timm.create_model(ENCODER).state_dict()
    save_file(pretrained, str(tmp_path / "w.safetensors"))
    common = [
        *timm_overrides(tmp_path, tmp_path / "w.safetensors"),
        "trainer.freeze_encoder_epochs=1",
        "optimizer.encoder_lr_factor=0.1",
        "trainer.accumulate_batches=2",
        "scheduler=cosine_warmup",  # a per-step schedule: it counts optimizer steps
    ]
    run_command("train", [*common, "trainer.epochs=1"], tmp_path / "first")
    out = capsys.readouterr().out
    assert "effective batch 4 (trainer.accumulate_batches=2)" in out
    assert "encoder frozen (weights and batch-norm statistics) for epochs 1-1" in out
    first = state(tmp_path / "first")
    encoder = {
        k[len("encoder.") :]: v for k, v in first["model"].items() if k.startswith("encoder.")
    }
    for key, value in encoder.items():  # weights and batch-norm buffers, as the file has them
        assert torch.equal(value, pretrained[key]), key
    groups = first["optimizer"]["param_groups"]
    assert len(groups) == 2 and groups[1]["lr_factor"] == 0.1
    assert groups[1]["initial_lr"] == pytest.approx(0.1 * groups[0]["initial_lr"])
    # Batches of 2 images, two per optimizer step: the schedule counts optimizer steps.
    images = int(re.search(r"train: (\d+) images", out).group(1))
    steps = math.ceil(math.ceil(images / 2) / 2)
    assert first["global_step"] == first["scheduler"]["last_epoch"] == steps
    assert first["config"]["scheduler"]["factory"]["steps_per_epoch"] == steps

    last = tmp_path / "first" / "checkpoints" / "last.pt"
    run_command(
        "train", [*common, "trainer.epochs=2", f"trainer.resume={last}"], tmp_path / "second"
    )
    second = state(tmp_path / "second")
    assert not torch.equal(second["model"]["encoder.conv1.0.weight"], pretrained["conv1.0.weight"])


def test_ema_is_what_validation_scores_and_best_pt_holds_and_it_resumes(tmp_path):
    common = [
        *tiny_overrides(tmp_path, objects=6),
        "model.widths=[4,8]",
        "trainer.ema=true",
        "trainer.ema_decay=0.5",
        "trainer.max_steps_per_epoch=3",
        "trainer.batch_size=4",
    ]
    result = run_command("train", [*common, "trainer.epochs=2"], tmp_path / "whole")
    best = state(tmp_path / "whole", "best.pt")
    trained = best["ema"]["trained"]
    assert best["ema"]["steps"] == best["global_step"] > 1  # one update per optimizer step
    differs = [k for k in trained if not torch.equal(trained[k], best["model"][k])]
    assert any(k.endswith("weight") for k in differs)
    # evaluate reads best.pt's "model": the average scores what validation reported.
    metrics = run_command(
        "evaluate",
        [f"checkpoint={tmp_path / 'whole/checkpoints/best.pt'}", "evaluate.progress=false"],
        tmp_path / "evaluate",
    )
    assert metrics["metrics"]["dice"] == pytest.approx(result["best_value"], abs=1e-4)

    run_command("train", [*common, "trainer.epochs=1"], tmp_path / "first")
    last = tmp_path / "first" / "checkpoints" / "last.pt"
    run_command(
        "train", [*common, "trainer.epochs=2", f"trainer.resume={last}"], tmp_path / "resumed"
    )
    whole, resumed = state(tmp_path / "whole"), state(tmp_path / "resumed")
    for part in ("model", "trained"):
        a = whole["model"] if part == "model" else whole["ema"]["trained"]
        b = resumed["model"] if part == "model" else resumed["ema"]["trained"]
        for key in a:
            assert torch.equal(a[key], b[key]), (part, key)


def test_the_average_of_a_short_run_follows_the_trained_weights():
    """At a fixed 0.999, 30 updates would leave 97% of the initial weights in the average;
    the warmed-up decay ((1 + n) / (10 + n)) lets it follow the training from the start."""
    model = torch.nn.Linear(2, 2)
    torch.nn.init.zeros_(model.weight)
    average = WeightAverage(model, 0.999)
    average.update(model)  # the first update copies
    torch.nn.init.ones_(model.weight)
    for _ in range(30):
        average.update(model)
    assert average.current_decay() == pytest.approx(32 / 41)  # after 31 updates
    assert average.module.weight.min() > 0.95
    average.steps = 9000  # (1 + n) / (10 + n) passes 0.999 after 8991 steps
    assert average.current_decay() == 0.999


def test_the_average_takes_batch_norm_counts_as_they_are_and_averages_its_statistics():
    """Integer buffers cannot be interpolated: num_batches_tracked follows the model, while
    the running mean is averaged like a weight."""
    model = torch.nn.BatchNorm1d(2)
    average = WeightAverage(model, 0.999)
    average.update(model)  # the first update copies: running mean 0
    for _ in range(3):
        model(torch.full((4, 2), 10.0) + torch.randn(4, 2))  # train mode: statistics move
    average.update(model)  # decay (1 + 1) / (10 + 1): the average moves 9/11 of the way
    averaged = average.module
    assert averaged.num_batches_tracked.item() == model.num_batches_tracked.item() == 3
    expected = model.running_mean * (9 / 11)
    assert torch.allclose(averaged.running_mean, expected, atol=1e-6)
    assert not torch.allclose(averaged.running_mean, model.running_mean)


def test_accumulating_k_batches_equals_one_batch_of_k_times_the_images():
    torch.manual_seed(0)
    model = UNet(3, 1, [4, 8], norm="group")  # no batch statistics: the two must agree
    images, masks = torch.randn(4, 3, 16, 24), (torch.rand(4, 16, 24) > 0.5).float()
    sgd = OmegaConf.create({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.5})
    after = []
    for batches in ([slice(0, 4)], [slice(0, 2), slice(2, 4)]):
        net = copy.deepcopy(model)
        step = TrainingStep(net, build_optimizer(sgd, net), BCELoss(Task("binary", 1)), CPU)
        group = [
            {"image": images[s], "mask": masks[s], "index": torch.arange(4)[s]} for s in batches
        ]
        result = step(group if len(group) > 1 else group[0])
        after.append((result.loss, net.state_dict()))
    (loss_one, one), (loss_two, two) = after
    assert loss_two == pytest.approx(loss_one, rel=1e-5)
    changed = [k for k in one if not torch.equal(one[k], model.state_dict()[k])]
    assert changed
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-6), key


def test_encoder_settings_on_a_model_without_an_encoder_are_one_paragraph():
    model = UNet(3, 1, [4, 8])
    with pytest.raises(UnetError, match=r"trainer.freeze_encoder_epochs acts on .* UNet has none"):
        EncoderFreeze(model, 2)
    adam = OmegaConf.create(
        {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "encoder_lr_factor": 0.1}
    )
    with pytest.raises(UnetError, match="optimizer.encoder_lr_factor acts on"):
        build_optimizer(adam, model)
    assert EncoderFreeze(model, 0).apply(1) is False  # the default asks nothing of the model


def test_one_cycle_peaks_scale_with_the_encoder_factor():
    model = torch.nn.ModuleDict({"encoder": torch.nn.Linear(2, 2), "head": torch.nn.Linear(2, 1)})
    cfg = compose("train", ["scheduler=onecycle", "optimizer.encoder_lr_factor=0.1"])
    cfg.scheduler.factory.steps_per_epoch = 5
    optimizer = build_optimizer(cfg.optimizer, model)
    Schedule(cfg, optimizer, 5)
    head, encoder = optimizer.param_groups
    assert encoder["max_lr"] == pytest.approx(0.1 * head["max_lr"]) and head["max_lr"] > 0


def test_two_processes_accumulating_train_what_one_process_trains(tmp_path):
    """2 processes x 2 batches of 1 per step (gloo) against 1 process x 4 batches of 1: the
    same images per step. The encoder is frozen (its batch norm in eval mode) and the decoder
    uses group norm, so no batch statistics differ; EMA and the encoder's own learning
    rate ride along. Both feed the network one image at a time because oneDNN chooses its
    convolution algorithm by batch size: a batch of 4 and 4 batches of 1 give gradients about
    1% apart (float-level with oneDNN off). One batch of K*b against K batches of b is
    `test_accumulating_k_batches_equals_one_batch_of_k_times_the_images`. SGD, whose step is
    linear in the gradient: Adam's first steps are about lr x sign(gradient), which makes
    float-level differences in near-zero gradients as large as the learning rate."""
    base = [o for o in tiny_overrides(tmp_path, objects=8) if not o.startswith("model.")]
    common = [
        *base, "model=unet_timm", f"model.encoder={ENCODER}", "model.norm=group",
        "model.decoder_channels=[8,8,8,8,8]", "loss=bce", "scheduler=none", "hardware=cpu",
        "hardware.precision=fp32", "trainer.freeze_encoder_epochs=1", "trainer.ema=true",
        "trainer.ema_decay=0.5", "optimizer=sgd", "optimizer.encoder_lr_factor=0.1",
        "trainer.epochs=1",
    ]  # fmt: skip
    run_command("train", [*common, "trainer.batch_size=1", "trainer.accumulate_batches=4"],
                tmp_path / "one")  # fmt: skip
    two = ["trainer.batch_size=1", "trainer.accumulate_batches=2", "hardware.devices=2"]
    run_command("train", [*common, *two], tmp_path / "two")
    one, other = state(tmp_path / "one"), state(tmp_path / "two")
    assert one["global_step"] == other["global_step"] > 1
    for part in ("model", "trained"):  # the average and the trained weights
        a = one["model"] if part == "model" else one["ema"]["trained"]
        b = other["model"] if part == "model" else other["ema"]["trained"]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=2e-5, msg=key)
