"""evaluate and predict of a checkpoint log to the training run it came from.

The checkpoint keeps each tracker's run id (`state["tracking"]`), so a score or a
submission can be traced back to its training in the tracker's own table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetcli.core.checkpoints import load_checkpoint
from unetcli.tracking.base import RunInfo
from unetcli.tracking.build import reopen
from unetcli.tracking.trackers import Trackers


def log_to_training_run(
    checkpoint: str | Path, run_dir: Path, values: dict[str, float], files: list[Path]
) -> None:
    """`values` as metrics and `files` as artifacts under `<command folder name>/`."""
    record = load_checkpoint(checkpoint, mmap=True).get("tracking") or {}
    opened = reopen(record)
    if not opened:
        return
    folder = f"{run_dir.parent.name}/{run_dir.name}"
    for tracker, data in opened:
        trackers = Trackers([tracker])
        trackers.call("start", RunInfo(run_dir, run_dir.name, resume={tracker.name: data}))
        trackers.call("metrics", values, 0)
        trackers.call("artifacts", [f for f in files if f.is_file()], folder)
        trackers.call("finish", False)


def numbers(node: Any, prefix: str) -> dict[str, float]:
    """The numeric leaves of a report (metrics.json) as flat metric names."""
    if isinstance(node, dict):
        flat: dict[str, float] = {}
        for key, value in node.items():
            flat.update(numbers(value, f"{prefix}/{key}"))
        return flat
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return {prefix: float(node)}
    return {}
