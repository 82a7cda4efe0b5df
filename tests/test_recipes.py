"""Recipes (conf/experiment/), optimizers, schedules and early stopping.

Each recipe composes with its own settings and runs one tiny step on the synthetic set
(`dataset=synthetic` replaces the recipe's dataset); optimizers and schedules are built
from their YAML and stepped; early stopping ends a run that stalls. The training runs
are in-process (`tests.helpers.run_command`): the same composition and `train.run`
as `unet train`, without a new Python process each.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from tests.helpers import CONF, compose, run_command, tiny_overrides
from unetcli.training.early_stopping import EarlyStopping
from unetcli.training.schedulers import Schedule
from unetcli.training.step import build_optimizer

# What each write-up recipe must set (the list).
RECIPES = {
    "carvana_unet1024": {
        "dataset": "carvana",
        "model._target_": "unetcli.models.UNet",
        "model.widths": [8, 16, 32, 64, 128, 256, 512, 1024],
        "dataset.image_size": [1024, 1024],
        "optimizer._target_": "torch.optim.RMSprop",
        "optimizer.lr": 2e-4,
        "trainer.batch_size": 2,
        "loss._target_": "unetcli.losses.BCEDiceLoss",
        "trainer.epochs": 50,
    },
    "carvana_unet": {
        "dataset": "carvana",
        "model._target_": "unetcli.models.UNet",
        "model.widths": [64, 128, 256, 512, 1024],
        "dataset.image_size": [320, 480],
        "optimizer._target_": "torch.optim.Adam",
        "optimizer.lr": 1e-4,
        "trainer.batch_size": 16,
        "loss._target_": "unetcli.losses.BCELoss",
        "hardware.precision": "auto",
        "trainer.epochs": 20,
    },
    "carvana_timm": {
        "dataset": "carvana",
        "model._target_": "unetcli.models.UNetTimm",
        "model.encoder": "resnet34",
        "model.pretrained": True,
        "dataset.image_size": [320, 480],
        "dataset.mean": None,
        "optimizer._target_": "torch.optim.AdamW",
        "optimizer.lr": 3e-4,
        "optimizer.encoder_lr_factor": 0.1,
        "trainer.freeze_encoder_epochs": 1,
        "trainer.ema": True,
        "trainer.batch_size": 16,
        "loss._target_": "unetcli.losses.BCEDiceLoss",
        "trainer.epochs": 20,
    },
    "carvana_original": {
        "dataset": "carvana",
        "trainer.mirror_context": False,
        "model._target_": "unetcli.models.UNetOriginal",
        "dataset.crop_size": [572, 572],
        "optimizer._target_": "torch.optim.SGD",
        "optimizer.lr": 0.01,
        "optimizer.momentum": 0.99,
        "trainer.batch_size": 3,
        "loss._target_": "unetcli.losses.BCEDiceLoss",
    },
    "buildings_unet": {
        "dataset": "massachusetts_buildings",
        "model._target_": "unetcli.models.UNet",
        "dataset.crop_size": 256,
        "augmentation.name": "flips_rot90",
        "loss._target_": "unetcli.losses.SoftDiceLoss",
        "optimizer._target_": "torch.optim.Adam",
        "optimizer.lr": 5e-5,
        "trainer.batch_size": 32,
        "trainer.epochs": 15,
        "trainer.monitor": "val/iou",
        "trainer.monitor_mode": "max",
    },
    "montgomery_unet": {
        "dataset": "montgomery",
        "model._target_": "unetcli.models.UNet",
        "dataset.image_size": [512, 512],
        "loss._target_": "unetcli.losses.SoftDiceLoss",
        "optimizer._target_": "torch.optim.Adam",
        "scheduler.factory._target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
        "trainer.monitor": "val/loss",
        "trainer.monitor_mode": "min",
    },
}

# Per recipe: the smallest model of the same kind (same depth for unet1024).
TINY_MODEL = {
    "carvana_unet1024": ["model.widths=[2,2,2,2,4,4,4,4]"],
    "carvana_unet": ["model.widths=[8,16,32]"],
    # timm's test network, from random weights (the pretrained path: test_encoders_weights.py).
    "carvana_timm": [
        "model.encoder=test_resnet", "model.decoder_channels=[8,8,8,8,8]", "model.pretrained=false"
    ],
    "carvana_original": ["model.widths=[8,16,32]", "dataset.crop_size=[48,64]"],
    "buildings_unet": ["model.widths=[8,16,32]", "dataset.crop_size=32"],
    "montgomery_unet": ["model.widths=[8,16,32]"],
}


def compose_train(*overrides: str):
    return compose("train", overrides)


def select(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return list(node) if hasattr(node, "__len__") and not isinstance(node, str) else node


def test_every_recipe_file_is_listed_here():
    assert sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")) == sorted(RECIPES)


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_sets_the_write_up_settings_over_any_dataset(name):
    cfg = compose_train(f"experiment={name}", "dataset=synthetic")
    assert cfg.dataset.name == "synthetic"  # the command line's dataset wins
    for key, value in RECIPES[name].items():
        if key != "dataset":
            assert select(cfg, key) == value, key


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_composes_with_its_own_dataset(name):
    dataset = RECIPES[name]["dataset"]
    cfg = compose_train(f"experiment={name}")
    assert cfg.dataset.name == dataset
    for key, value in RECIPES[name].items():
        if key != "dataset":
            assert select(cfg, key) == value, key


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    """One synthetic data folder for all the tiny runs below (generated on first use)."""
    return tmp_path_factory.mktemp("recipes")


def tiny_run_args(data: Path) -> list[str]:
    """8 synthetic objects (16 images of 48x64), one step of 4, one validation image logged."""
    keep = [
        o
        for o in tiny_overrides(data, objects=8)
        if not o.startswith(("model.", "trainer.batch", "paths.output_root"))
    ]
    return [
        *keep,
        "dataset=synthetic",
        "trainer.batch_size=4",
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=1",
        "trainer.log_images=1",
    ]


def saved_state(run: Path) -> dict:
    """The last checkpoint: its `config` is the resolved config the run trained with."""
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_runs_one_tiny_step_on_the_synthetic_set(name, tmp_path, shared_data):
    args = [f"experiment={name}", *tiny_run_args(shared_data), *TINY_MODEL[name]]
    result = run_command("train", args, tmp_path)
    cfg = saved_state(tmp_path)["config"]
    assert cfg["model"]["_target_"] == RECIPES[name]["model._target_"]
    assert cfg["loss"]["_target_"] == RECIPES[name]["loss._target_"]
    assert cfg["optimizer"]["_target_"] == RECIPES[name]["optimizer._target_"]
    assert result["epochs"] == 1 and math.isfinite(result["final"]["train/loss"])
    assert result["monitor"] == RECIPES[name].get("trainer.monitor", "val/dice")


@pytest.mark.slow
@pytest.mark.parametrize(
    "mix",
    [
        # The paper's network and weighted loss: weight maps, and at the paper's depth
        # (margin 92) on 48x64 images, mirror_context=auto adds the missing context.
        [
            "model=unet_original",
            "model.widths=[4,4,8,8,8]",
            "loss=weighted_ce",
            "optimizer=sgd_paper",
            "scheduler=onecycle",
            "augmentation=grid_distortion",
        ],
        [
            "model=unet_resnet",
            "model.encoder=resnet18",
            "model.decoder_channels=[32,16,16,8,8]",
            "loss=lovasz",
            "optimizer=adamw",
            "scheduler=cosine_warmup",
            "augmentation=flips_rot90",
        ],
    ],
    ids=["unet_original+weighted_ce", "unet_resnet+lovasz"],
)
def test_any_model_mixes_with_any_loss_optimizer_schedule_and_augmentation(
    mix, tmp_path, shared_data
):
    args = [*tiny_run_args(shared_data), *mix, "trainer.max_steps_per_epoch=2"]
    run_command("train", args, tmp_path)
    state = saved_state(tmp_path)
    assert state["epoch"] == 1 and state["global_step"] == 2
    # Per-step schedules got the loader's steps per epoch.
    assert state["config"]["scheduler"]["factory"]["steps_per_epoch"] == 2
    assert 0 <= state["metrics"]["val/dice"] <= 1


@pytest.mark.slow
def test_early_stopping_ends_a_run_that_stops_improving(tmp_path, shared_data, capsys):
    args = [*tiny_run_args(shared_data), "model.widths=[8,16]", "trainer.epochs=6",
            "optimizer.lr=0", "trainer.early_stopping.patience=2"]  # fmt: skip
    result = run_command("train", args, tmp_path)
    assert "early stopping: val/dice has not improved for 2 epochs" in capsys.readouterr().out
    assert result["epochs"] == 3 and result["stopped_early"] is True
    with (tmp_path / "metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]


def test_early_stopping_is_off_by_default_and_honours_min_delta():
    assert compose_train().trainer.early_stopping.patience is None
    never = EarlyStopping(None, "max")
    assert not any(never.update(0.5) for _ in range(20))
    stop = EarlyStopping(2, "max", min_delta=0.01)
    assert [stop.update(v) for v in (0.5, 0.505, 0.52, 0.525, 0.529)] == [
        False, False, False, False, True,
    ]  # fmt: skip
    low = EarlyStopping(1, "min")
    assert [low.update(v) for v in (1.0, 0.9, 0.95)] == [False, False, True]
    restored = EarlyStopping(1, "min")
    restored.load_state_dict(low.state_dict())
    assert restored.best == 0.9 and restored.bad_epochs == 1


# --- optimizers and schedules built from their YAML ---------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml")))
def test_each_optimizer_builds_and_steps(name):
    cfg = compose_train(f"optimizer={name}")
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = build_optimizer(cfg.optimizer, [weight])
    before = weight.detach().clone()
    for _ in range(3):
        optimizer.zero_grad()
        (weight**2).sum().backward()
        optimizer.step()
    assert (weight**2).sum() < (before**2).sum()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr)
    if name == "sgd_paper":
        assert optimizer.param_groups[0]["momentum"] == 0.99


def lr_trace(scheduler_name: str, *overrides: str, epochs: int = 10, steps: int = 4) -> list[float]:
    """The learning rate at every training step of a run, under the trainer's own Schedule."""
    cfg = compose_train(
        f"scheduler={scheduler_name}", f"trainer.epochs={epochs}", "optimizer.lr=0.1", *overrides
    )
    optimizer = build_optimizer(cfg.optimizer, [torch.nn.Parameter(torch.zeros(1))])
    schedule = Schedule(cfg, optimizer, loader_steps=steps)
    trace = []
    for _ in range(epochs):
        for _ in range(steps):
            trace.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.after_step()
        schedule.after_epoch(0.5)  # a monitored metric that never improves (plateau)
    return trace


def test_cosine_keeps_torchs_schedule_and_adds_an_optional_warm_up():
    trace = lr_trace("cosine")[::4]  # once per epoch
    reference = [0.1e-5 + 0.5 * (0.1 - 1e-6) * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    assert trace == pytest.approx(reference, rel=1e-6)
    warm = lr_trace("cosine", "scheduler.factory.warmup=3")[::4]
    assert warm[0] == pytest.approx(0.001) and warm[0] < warm[1] < warm[2] < warm[3]
    assert warm[3] == pytest.approx(0.1) and warm[3] > warm[6] > warm[9]


def test_cosine_warmup_rises_per_step_then_anneals():
    trace = lr_trace("cosine_warmup")  # 1 warm-up epoch = 4 steps
    assert trace[0] == pytest.approx(0.001)
    assert trace[:5] == sorted(trace[:5]) and trace[4] == pytest.approx(0.1)
    assert trace[4:] == sorted(trace[4:], reverse=True) and trace[-1] < 0.001


def test_onecycle_peaks_at_the_optimizer_lr_near_30_percent():
    trace = lr_trace("onecycle")
    peak = max(range(len(trace)), key=trace.__getitem__)
    assert trace[peak] == pytest.approx(0.1, rel=1e-3)
    assert abs(peak / len(trace) - 0.3) < 0.05
    assert trace[0] == pytest.approx(0.1 / 25) and trace[-1] < 1e-5


def test_step_and_plateau_cut_the_rate_tenfold():
    step = lr_trace("step", epochs=12)[::4]
    assert step[9] == pytest.approx(0.1) and step[10] == pytest.approx(0.01)
    plateau = lr_trace("plateau")[::4]  # patience 5: the sixth epoch without progress cuts
    assert plateau[:7] == pytest.approx([0.1] * 7) and plateau[7] == pytest.approx(0.01)
    cfg = compose_train("scheduler=plateau")
    assert cfg.scheduler.factory.min_lr == 1e-7 and cfg.scheduler.factory.factor == 0.1
    assert lr_trace("none") == [0.1] * 40
