"""trainer.time_budget: durations, and a run that fits its epochs and schedule into the budget."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import run_command, tiny_overrides
from unetcli.errors import UnetError
from unetcli.training.time_budget import parse_budget


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("40s", 40), ("40", 40), (40, 40)],
)
def test_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["2 hours", "h", "90x", "-5m"])
def test_a_bad_duration_names_the_key(text):
    with pytest.raises(UnetError, match="trainer.time_budget"):
        parse_budget(text)


@pytest.mark.slow
def test_a_budgeted_run_ends_in_time_with_its_one_cycle_at_its_end(tmp_path, capsys):
    # 12 s here to keep the suite short; the README reports the 40 s run.
    budget = 12
    overrides = [*tiny_overrides(tmp_path, objects=40), "trainer.log_images=0",
                 "scheduler=onecycle", f"trainer.time_budget={budget}s", "trainer.epochs=500"]
    result = run_command("train", overrides, tmp_path / "run")
    assert "time budget:" in capsys.readouterr().out
    assert result["seconds"] <= budget + 5  # "a few seconds": one step or validation past the plan
    assert 2 <= result["epochs"] < 500  # the budget, not trainer.epochs, set the length
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    scheduler = last["scheduler"]
    assert scheduler["last_epoch"] == scheduler["total_steps"]  # the cycle ended with the run
    assert last["config"]["trainer"]["epochs"] == result["epochs"]
