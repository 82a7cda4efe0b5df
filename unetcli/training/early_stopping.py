"""Stop training once the monitored metric has stopped improving."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class EarlyStopping:
    """Counts epochs without an improvement of more than `min_delta`; off when patience is None.

    Kept apart from the best-checkpoint choice (any improvement counts there),
    so a run never stops on noise-sized gains when min_delta asks for more.
    """

    patience: int | None
    mode: str = "max"
    min_delta: float = 0.0
    best: float | None = None
    bad_epochs: int = 0

    def update(self, value: float) -> bool:
        """Record one epoch's value; True when training should stop now."""
        gain = (
            None if self.best is None else (value - self.best) * (1 if self.mode == "max" else -1)
        )
        if gain is None or gain > self.min_delta:
            self.best, self.bad_epochs = value, 0
            return False
        self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.bad_epochs = int(state.get("bad_epochs", 0))
