"""Non-finite losses: skipped and counted, the last good checkpoint restored with a lower learning
rate after trainer.max_bad_steps in a row, then a stop naming images; the first non-finite
module found by hooks. Real trainer, real loss made NaN on chosen steps (tests/nan_loss.py)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tests.helpers import run_command, tiny_overrides
from unetcli.errors import UnetError
from unetcli.training.nonfinite import first_nonfinite_module


def nan_run(tmp_path, steps: str, *extra: str) -> list[str]:
    return [
        *tiny_overrides(tmp_path, objects=8),
        "trainer.epochs=2",
        "trainer.max_steps_per_epoch=4",
        "trainer.batch_size=2",
        "model.widths=[4,8]",
        "loss=bce",
        "loss._target_=tests.nan_loss.NaNOnSteps",
        f"+loss.steps={steps}",
        *extra,
    ]  # fmt: skip


def test_nan_steps_are_skipped_counted_and_the_run_finishes(tmp_path, capsys):
    result = run_command("train", nan_run(tmp_path, "[2,3,6]"), tmp_path / "run")
    assert result["epochs"] == 2 and result["nonfinite_steps"] == 3
    assert result["nonfinite_restores"] == 0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["nonfinite_steps"] == 3
    out = capsys.readouterr().out
    assert "step 2: the loss is not finite; step skipped (images: " in out
    assert "synthetic/train/" in out.split("step 2:")[1].splitlines()[0]  # its files named


def test_bad_steps_in_a_row_restore_then_stop_naming_the_images(tmp_path, capsys):
    # Epoch 1 (steps 1-4) is good and saved; from call 5 on every step is NaN.
    overrides = nan_run(tmp_path, str(list(range(5, 40))).replace(" ", ""),
                        "trainer.max_bad_steps=2", "trainer.epochs=3")  # fmt: skip
    with pytest.raises(UnetError) as err:
        run_command("train", overrides, tmp_path / "run")
    out = capsys.readouterr().out
    assert "2 non-finite steps in a row: restored" in out and "last.pt (epoch 1)" in out
    message = str(err.value)
    assert "2 steps in a row had a non-finite loss" in message and "4 such steps" in message
    assert "the loss itself" in message and "synthetic/train/" in message
    assert "\n" not in message


def test_hooks_name_the_first_module_whose_output_is_not_finite():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 1, 1))
    with torch.no_grad():
        model[2].weight[0, 0, 0, 0] = float("inf")
    x = torch.ones(1, 1, 9, 9)
    assert first_nonfinite_module(model, lambda: model(x)) == "2"
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed afterwards
