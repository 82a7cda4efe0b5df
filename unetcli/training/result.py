"""The end of a training run: result.json (what sweeps read) and the one-screen summary."""

from __future__ import annotations

import json
from pathlib import Path

from unetcli.core.console import format_metrics, print_summary

#: The run's result, written last: its presence means the run finished (a sweep reads it).
RESULT_FILE = "result.json"


def write_result(run_dir: Path, result: dict) -> None:
    """result.json, written to a temporary name and renamed (a sweep may read it any time)."""
    path = run_dir / RESULT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def _checkpoints(ckpt_dir: Path) -> str:
    """best.pt and last.pt; last.pt alone for a run without validation (dataset.fold=all)."""
    best = ckpt_dir / "best.pt"
    return f"{best}, {ckpt_dir / 'last.pt'}" if best.is_file() else str(ckpt_dir / "last.pt")


def print_training_summary(result: dict, ckpt_dir: Path) -> None:
    """Where the outputs went and the headline metrics."""
    run_dir = Path(result["run_dir"])
    best, last = result["best_value"], result["epochs"]
    minutes, seconds = divmod(int(result["seconds"]), 60)
    best_row = (
        f"{result['best_epoch']} of {last}  ({result['monitor']} {best:.4f})"
        if best is not None
        else "none"
    )
    print_summary(
        "unet train: done",
        [
            ("run folder", str(run_dir)),
            ("best epoch", best_row),
            ("last epoch", format_metrics(result["final"])),
            *([("stopped early", f"after epoch {last}")] if result["stopped_early"] else []),
            ("checkpoints", _checkpoints(ckpt_dir)),
            ("metrics", str(run_dir / "metrics.csv")),
            ("tensorboard", f"tensorboard --logdir {run_dir / 'tensorboard'}"),
            *([("skipped files", ", ".join(result["skipped_files"]))]
              if result["skipped_files"] else []),  # fmt: skip
            *([("non-finite steps", f"{result['nonfinite_steps']} skipped")]
              if result["nonfinite_steps"] else []),  # fmt: skip
            ("time", f"{minutes}m {seconds:02d}s"),
        ],
    )
