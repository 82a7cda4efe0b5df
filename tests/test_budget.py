"""trainer.time_budget: durations, and a run that fits its epochs and schedule into the budget."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import run_command, tiny_overrides
from unetcli.core.durations import seconds
from unetcli.errors import UnetError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("1h 30m", 5400), ("40s", 40),
     ("40", 40), (40, 40), (2.5, 2.5)],
)  # fmt: skip
def test_durations(text, expected):
    """One reading for every duration key: a bare number is seconds."""
    assert seconds(text, "trainer.time_budget") == expected
    assert seconds(text, "plan.time_budget") == expected
    assert seconds(None, "trainer.time_budget") is None


@pytest.mark.parametrize("text", ["2 hours", "h", "90x", "-5m", "0", 0, True, "soon"])
def test_a_bad_duration_names_the_key(text):
    for key in ("trainer.time_budget", "plan.time_budget", "trainer.checkpoint_every"):
        with pytest.raises(UnetError, match=f"{key}=.* is not a duration"):
            seconds(text, key)


@pytest.mark.slow
def test_a_budgeted_run_ends_in_time_with_its_one_cycle_at_its_end(tmp_path, capsys):
    # 12 s here to keep the suite short; docs/benchmarks.md reports a 40 s run.
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
