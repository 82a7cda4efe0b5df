"""summary.png: every job's metric over its epochs, and the metric against each swept parameter.

The curves come from each job's metrics.csv (so a job still running shows the
epochs it has done); the parameter panels show each job's best value, with a
log axis for a numeric parameter spread over more than a factor of 10 (a
learning rate) and one slot per value for a categorical one (a loss).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from unetcli.sweeps.rows import SweepRows

INSTALL = 'pip install "unetcli[cluster]"'


def read_curve(job_dir: Path, column: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metrics.csv column; empty when the job has not logged it yet."""
    path = job_dir / "metrics.csv"
    if not path.is_file():
        return [], []
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(column) not in (None, "")]
    return [int(r["epoch"]) for r in rows], [float(r[column]) for r in rows]


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _param_panel(ax: Any, summary: SweepRows, name: str) -> None:
    scored = [r for r in summary.rows if isinstance(r.get("best_value"), (int, float))]
    raw = [r["params"].get(name, "") for r in scored]
    ys = [r["best_value"] for r in scored]
    xs = _numbers(raw)
    if xs is not None:
        ax.scatter(xs, ys)
        if min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
    else:
        labels = sorted(set(raw))
        ax.scatter([labels.index(v) for v in raw], ys)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
    ax.set_xlabel(name)
    ax.set_ylabel(f"best {summary.monitor}")


def plot_summary(summary: SweepRows, path: Path) -> str:
    """Write summary.png; returns its path, or why it was not written (no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"not written: it needs matplotlib ({INSTALL})"
    panels = 1 + len(summary.params)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    axes = grid.ravel()
    for unused in axes[panels:]:
        unused.set_visible(False)
    curves = axes[0]
    column = summary.monitor.replace("/", "_")
    for row in summary.rows:
        epochs, values = read_curve(Path(row["run_dir"]), column)
        if epochs:
            curves.plot(epochs, values, marker=".", label=f"job {row['job']}")
    curves.set_xlabel("epoch")
    curves.set_ylabel(summary.monitor or "metric")
    curves.set_title("every job")
    if len(summary.rows) <= 12:
        curves.legend(fontsize=7)
    for ax, name in zip(axes[1:], summary.params):
        _param_panel(ax, summary, name)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return str(path)
