"""The trainer in-process: resume equals an uninterrupted run, logs survive errors, debug modes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from unetcli.commands import train
from unetcli.config.location import config_dir
from unetcli.errors import UnetError

pytestmark = pytest.mark.slow


def tiny_cfg(root: Path, run: str, *overrides: str) -> DictConfig:
    """A train config of a few seconds on the synthetic set, writing into root/run."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            [
                f"paths.data_dir={root / 'data'}",
                "dataset.layout.num_objects=12",
                "dataset.layout.views=2",
                "dataset.layout.num_test=2",
                "dataset.layout.height=32",
                "dataset.layout.width=48",
                "dataset.image_size=[32,48]",
                "model.widths=[4,8,16]",
                "trainer.batch_size=4",
                "trainer.progress=false",
                "hardware=cpu",
                "hardware.num_workers=0",
                *overrides,
            ],
        )
    with open_dict(cfg):
        cfg.paths.run_dir = str(root / run)
    return cfg


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    # flips: the augmentation must also be the same after the resume.
    whole = train.run(tiny_cfg(tmp_path, "whole", "trainer.epochs=3", "augmentation=flips"))
    train.run(tiny_cfg(tmp_path, "first", "trainer.epochs=1", "augmentation=flips"))
    resumed = train.run(
        tiny_cfg(
            tmp_path,
            "resumed",
            "trainer.epochs=3",
            "augmentation=flips",
            f"trainer.resume={tmp_path / 'first' / 'checkpoints' / 'last.pt'}",
        )
    )
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["final"] == pytest.approx(whole["final"], abs=1e-6)
    assert resumed["epochs"] == whole["epochs"] == 3


def test_main_returns_the_monitored_metric_for_sweepers(tmp_path):
    cfg = tiny_cfg(tmp_path, "run", "trainer.epochs=1", "trainer.max_steps_per_epoch=2")
    value = train.main(cfg)  # Hydra passes a given config straight to the task function
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    assert value == pytest.approx(train.run(cfg)["best_value"])


def test_tensorboard_events_reach_disk_when_a_run_fails(tmp_path):
    cfg = tiny_cfg(
        tmp_path,
        "run",
        "trainer.epochs=2",
        "trainer.monitor=val/nope",
        "trainer.max_steps_per_epoch=3",
    )
    with pytest.raises(UnetError, match="trainer.monitor=val/nope"):
        train.run(cfg)
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    # The hardware choice is in the run's one event file, as hardware.json says it.
    assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 1
    assert "hardware/text_summary" in acc.Tags()["tensors"]
    assert (tmp_path / "run" / "hardware.json").is_file()


def test_debug_profile_writes_a_trace_and_the_slowest_operators(tmp_path, capsys):
    cfg = tiny_cfg(tmp_path, "run", "debug=profile", "trainer.profile_steps=2")
    train.run(cfg)
    folder = tmp_path / "run" / "profile"
    assert (folder / "trace.json").stat().st_size > 1000
    table = (folder / "operators.txt").read_text()
    assert "aten::" in table and "Self CPU" in table
    assert "profile of 2 training steps" in capsys.readouterr().out


def test_debug_overfit_drives_the_training_loss_down(tmp_path):
    cfg = tiny_cfg(tmp_path, "run", "debug=overfit", "model.widths=[8,16,32]", "trainer.epochs=5")
    result = train.run(cfg)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        losses = [float(row["train_loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True), losses
    assert losses[-1] < 0.8 * losses[0], losses
    # Validation runs on the same images: the model comes to fit them.
    assert result["best_value"] > 0.9
