"""W&B offline: a resumed run continues the same W&B run, counting its steps on, and
evaluate of its checkpoint logs to it; read back from the offline run files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_command, tiny_overrides
from tests.wandb_records import records, run_files, summary

pytestmark = pytest.mark.slow
TINY = ["model.widths=[4,8]", "hardware=cpu", "hardware.precision=fp32",
        "logger=[tensorboard,wandb]", "logger.wandb.mode=offline"]  # fmt: skip


def steps(path: Path) -> list[int]:
    return [r.history.step.num for r in records(path) if r.WhichOneof("record_type") == "history"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """One epoch, then a second resumed from its last.pt in a new folder."""
    root = tmp_path_factory.mktemp("wandb")
    base = [*tiny_overrides(root, objects=6), *TINY]
    run_command("train", [*base, "trainer.epochs=1"], root / "first")
    last = root / "first/checkpoints/last.pt"
    run_command("train", [*base, "trainer.epochs=2", f"trainer.resume={last}"], root / "on")
    return root


def test_a_resumed_run_is_the_same_wandb_run(resumed):
    (first,) = run_files(resumed / "first")
    (second,) = run_files(resumed / "on")
    one, two = summary(first), summary(second)
    assert one["id"] and two["id"] == one["id"]
    assert [r["epoch"] for r in one["history"] if "val/dice" in r] == ["1"]
    assert [r["epoch"] for r in two["history"] if "val/dice" in r] == ["2"]
    assert min(steps(second)) > max(steps(first))  # W&B keeps rows whose step goes on


def test_evaluate_of_the_checkpoint_logs_to_its_wandb_run(resumed):
    args = [f"checkpoint={resumed / 'on/checkpoints/last.pt'}", "hardware=cpu",
            f"paths.output_root={resumed / 'outputs'}", "hardware.num_workers=0",
            "hardware.tune=false", "evaluate.progress=false"]  # fmt: skip
    result = run_command("evaluate", args, resumed / "evaluate")
    (trained,) = run_files(resumed / "on")
    (evaluated,) = run_files(resumed / "evaluate")
    run = summary(evaluated)
    assert run["id"] == summary(trained)["id"]
    (row,) = [r for r in run["history"] if "evaluate/val/dice" in r]
    assert float(row["evaluate/val/dice"]) == pytest.approx(result["metrics"]["dice"])
    assert {"metrics.json", "per_image.csv"} <= set(run["artifacts"])
