"""evaluate and predict of a checkpoint log to the training run it came from; evaluate of
an ensemble logs to the run that links its folds' runs.

The checkpoint keeps each tracker's run id (`state["tracking"]`), so a score or a
submission can be traced back to its training in the tracker's own table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetcli.core.checkpoints import load_checkpoint
from unetcli.tracking.build import reopen
from unetcli.tracking.interface import RunInfo, Tracker
from unetcli.tracking.trackers import Trackers


def log_to_training_run(
    checkpoint: str | Path,
    run_dir: Path,
    values: dict[str, float],
    files: list[Path],
    submission: Path | None = None,
) -> None:
    """`values` as metrics and `files` as artifacts under `<command folder name>/`; a
    submission (unet predict) as each tracker traces one."""
    record = load_checkpoint(checkpoint, mmap=True).get("tracking") or {}
    for tracker, data in reopen(record):
        info = RunInfo(run_dir, run_dir.name, resume={tracker.name: data})
        _send(tracker, ("start", info), values, files, _folder(run_dir), submission)


def log_to_linked_run(
    checkpoints: list[Path], run_dir: Path, values: dict[str, float], files: list[Path]
) -> None:
    """An evaluation of several checkpoints (an ensemble's folds) into the run that links
    their training runs: the sweep's parent, or a new run beside them (Tracker.start_linked).

    Only trackers that logged every member take part: a fold trained without MLflow has no
    run to link.
    """
    states = [load_checkpoint(c, mmap=True) for c in checkpoints]
    records = [state.get("tracking") or {} for state in states]
    group = ((states[0].get("config") or {}).get("tracking") or {}).get("group")
    shared = [name for name in records[0] if all(name in r for r in records)]
    for tracker, _ in reopen({key: records[0][key] for key in shared}):
        members = [r[tracker.name] for r in records]
        info = RunInfo(run_dir, _folder(run_dir), group)
        _send(tracker, ("start_linked", info, members), values, files, _folder(run_dir), None)


def _folder(run_dir: Path) -> str:
    """`evaluate/<time>`: where a command's files go in the run, one folder per command run."""
    return f"{run_dir.parent.name}/{run_dir.name}"


def _send(
    tracker: Tracker,
    start: tuple,
    values: dict[str, float],
    files: list[Path],
    folder: str,
    submission: Path | None,
) -> None:
    """Open the run, log, close it; a failing service warns once (Trackers) and is left."""
    trackers = Trackers([tracker])
    trackers.call(*start)
    trackers.call("metrics", values, 0)
    trackers.call("artifacts", files, folder)  # each tracker skips files that are missing
    if submission is not None and submission.is_file():
        trackers.call("submission", submission, folder)
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
