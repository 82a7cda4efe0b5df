"""The sweep's result: summary.csv (best job first) and summary.png, from the job folders.

Read from what each job left in its folder (`sweep_job.json`, `result.json`,
`metrics.csv`), so the summary can be rebuilt at any time: at the end of a
multirun (the `SweepSummary` callback), or with `unet sweep-summary DIR` for a
sweep still running or one that stopped half-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from unetcli.core.console import print_summary
from unetcli.distributed.env import is_secondary_process
from unetcli.errors import report
from unetcli.sweeps.chart import plot_summary
from unetcli.sweeps.rows import SweepRows, collect, job_dirs, write_csv


def summarise(sweep_dir: Path) -> SweepRows | None:
    """Write summary.csv and summary.png into `sweep_dir`; None when it holds no job yet."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir() or not job_dirs(sweep_dir):
        return None
    summary = collect(sweep_dir)
    write_csv(summary, sweep_dir / "summary.csv")
    plotted = plot_summary(summary, sweep_dir / "summary.png")
    print_sweep_summary(summary, sweep_dir, plotted)
    return summary


def print_sweep_summary(summary: SweepRows, sweep_dir: Path, plotted: str) -> None:
    """The one-screen end of a sweep: where things are, the best job, failed jobs."""
    done = [r for r in summary.rows if r["status"] == "done"]
    rows = [("sweep folder", str(sweep_dir)),
            ("jobs", f"{len(done)} done, {len(summary.failed)} failed, "
                     f"{len(summary.rows) - len(done) - len(summary.failed)} unfinished"),
            ("summary.csv", str(sweep_dir / "summary.csv")), ("summary.png", plotted)]
    if done:
        best = summary.rows[0]
        swept = " ".join(f"{k}={best['params'][k]}" for k in summary.params if k in best["params"])
        rows.append(("best", f"job {best['job']}: {summary.monitor} {best['best_value']:.4f}  "
                             f"{swept}"))
    rows += [(f"failed job {r['job']}", r["error"]) for r in summary.failed]
    print_summary("sweep summary", rows)


class SweepSummary(Callback):
    """At the end of every multirun: the summary, and exit status 1 if any job failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Make the sweep folder first: the Optuna sweeper opens its study database there."""
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if is_secondary_process():  # under torchrun every process runs the sweep; one writes
            return
        summary = summarise(Path(config.hydra.sweep.dir))
        if summary is not None and summary.failed:
            jobs = ", ".join(r["job"] for r in summary.failed)
            report(f"{len(summary.failed)} sweep job(s) failed ({jobs}); their errors are in "
                   f"{config.hydra.sweep.dir}/summary.csv. Fix them and start the same sweep "
                   "again with the same hydra.sweep.dir: finished jobs are skipped.")
            raise SystemExit(1)
