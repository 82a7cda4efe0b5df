"""How long tuning may take: a number of seconds and a share of the planned run."""

from __future__ import annotations

import time

from omegaconf import DictConfig

from unetcli.core.durations import seconds
from unetcli.errors import UnetError


class Budget:
    """`hardware.tune_budget`: the shorter of `seconds` and `share` x the planned run.

    The planned run is only known once a step has been timed (planned steps x
    step time), so the limit is asked for with that time; the clock starts
    when the budget is made and covers every phase of tuning.
    """

    def __init__(self, node: DictConfig, planned_steps: int | None) -> None:
        self.seconds = seconds(node.seconds, "hardware.tune_budget.seconds")
        self.share = None if node.share is None else float(node.share)
        if self.share is not None and self.share < 0:
            raise UnetError(f"hardware.tune_budget.share must be >= 0 or null, got {self.share}")
        self.rounds = int(node.rounds)
        if self.rounds < 1:
            raise UnetError(f"hardware.tune_budget.rounds must be at least 1, got {self.rounds}")
        self.planned_steps = planned_steps
        self.started = time.perf_counter()

    def total(self, step_seconds: float) -> float:
        limits = [float("inf")]
        if self.seconds is not None:
            limits.append(self.seconds)
        if self.share is not None and self.planned_steps:
            limits.append(self.share * self.planned_steps * step_seconds)
        return min(limits)

    def start(self) -> None:
        """Start the clock (again): what came before is not the tuner's time."""
        self.started = time.perf_counter()

    def too_short_for(self, steps: int) -> bool:
        """True when the share of the planned run is less than `steps` steps, whatever a
        step takes: such a run cannot afford one round, so nothing is built to time it."""
        return bool(self.share is not None and self.planned_steps) and (
            self.share * self.planned_steps < steps
        )

    def left(self, step_seconds: float) -> float:
        """Seconds still allowed, given the time of one step."""
        return self.total(step_seconds) - self.elapsed()

    def describe(self) -> str:
        parts = [f"{self.seconds:g} s"] if self.seconds is not None else []
        if self.share is not None and self.planned_steps:
            parts.append(f"{self.share:.0%} of a {self.planned_steps}-step run")
        return " or ".join(parts) or "unlimited"

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
