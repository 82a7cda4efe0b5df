"""The one interface every tracker offers, and what a tracker is told about its run.

Training, evaluate and predict speak to trackers only through these methods, so adding a
tracker is one small class and one YAML file in conf/logger/ (`_target_`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unetcli.errors import UnetError


@dataclass
class RunInfo:
    """The run a tracker logs: its folder and name, its sweep group, a run to continue.

    `resume`: the trackers' records in the checkpoint continued (`state["tracking"]`, by
    tracker name), so a resumed run, or evaluate/predict of its checkpoint, lands in the
    same tracker run.
    """

    run_dir: Path
    name: str
    group: str | None = None
    resume: dict[str, dict[str, Any]] = field(default_factory=dict)

    def previous(self, tracker: str) -> dict[str, Any]:
        """The record `tracker` left in the checkpoint continued ({} if none)."""
        return self.resume.get(tracker) or {}


class Tracker:
    """Does nothing by default; each tracker overrides what it can record."""

    name = "tracker"

    def start(self, info: RunInfo) -> None:
        """Open (or reopen) the run."""

    def start_linked(self, info: RunInfo, records: list[dict[str, Any]]) -> None:
        """Open the run an evaluation of several runs logs to (an ensemble's folds).

        `records` find the member runs (one per checkpoint). By default a new run in
        `info.group`, the members' sweep; a tracker with parent runs (MLflow) reopens the
        parent that gathers exactly these members, so the cross-validation score sits on
        the sweep's own row.
        """
        self.start(info)

    def record(self) -> dict[str, Any]:
        """Plain data that finds this run again (stored in checkpoints)."""
        return {}

    def params(self, values: dict[str, str]) -> None:
        """The flattened config and the hardware choice."""

    def tags(self, values: dict[str, str]) -> None:
        """Provenance: the git commit, the torch version."""

    def step(self, loss: float, global_step: int) -> None:
        """The training loss of one optimizer step."""

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        """One epoch's metrics and learning rate, as `metrics` at step `epoch` (the epoch's
        mean training loss as train/epoch_loss, apart from the per-step train/loss)."""
        values = {k: v for k, v in metrics.items() if k != "train/loss"}
        values.update({"train/epoch_loss": metrics["train/loss"], "lr": lr, "seconds": seconds})
        self.metrics(values, epoch)

    def metrics(self, values: dict[str, float], step: int) -> None:
        """Scalars outside training (evaluate's scores)."""

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        """An HWC uint8 picture (the validation grid)."""

    def text(self, tag: str, text: str) -> None:
        """A short text (the hardware line)."""

    def artifacts(self, paths: list[Path], folder: str) -> None:
        """Files kept with the run (best.pt, metrics.csv, result.json, ...)."""

    def submission(self, path: Path, folder: str) -> None:
        """A submission made from this run's checkpoint (unet predict), so it can be traced
        back to its training: its path at least; the file itself where the tracker's
        settings ask for it."""

    def finish(self, failed: bool) -> None:
        """Close the run; `failed` when training ended with an error."""


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"trainer.epochs": "2", ...}; lists are one value, as the YAML shows."""
    if isinstance(node, dict):
        flat: dict[str, str] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: str(node)} if prefix else {}


def missing_extra(package: str, extra: str, key: str) -> UnetError:
    """The one paragraph for a tracker whose library is not installed."""
    return UnetError(
        f"{key} needs the {package} package, which is not installed. Install the extra with "
        f'pip install "unetcli[{extra}]" (or leave {key.split(".")[-1]} out of logger=[...]).'
    )
