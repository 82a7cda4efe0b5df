"""The sweep's result: summary.csv (best job first) and summary.png, from the job folders.

Read from what each job left in its folder (`sweep_job.json`, `result.json`,
`metrics.csv`), so the summary can be rebuilt at any time: at the end of a
multirun (the `SweepSummary` callback), or with `unet sweep-summary DIR` for a
sweep still running or one that stopped half-way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from unetcli.errors import report
from unetcli.summary import print_summary
from unetcli.sweeps.records import read_job, read_result

BASE_FIELDS = [
    "job", "status", "monitor", "mode", "best_value", "best_epoch", "epochs", "seconds"
]


@dataclass
class SweepRows:
    """The rows of summary.csv, best first, and the parameters that vary between jobs."""

    rows: list[dict[str, Any]]
    params: list[str]
    monitor: str
    mode: str

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (those Hydra wrote a .hydra/ into), in job order."""
    found = [p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()]
    return sorted(found, key=lambda p: (int(p.name), "") if p.name.isdigit() else (1 << 30, p.name))


def _overrides(job_dir: Path, record: dict | None) -> list[str]:
    if record is not None:
        return list(record["overrides"])
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(OmegaConf.load(path)) if path.is_file() else []


def job_row(job_dir: Path) -> dict[str, Any]:
    """One job's row: status, overrides (one column per key), its result, its error."""
    record, result = read_job(job_dir), read_result(job_dir)
    overrides = _overrides(job_dir, record)
    status = record["status"] if record else ("done" if result else "unknown")
    row: dict[str, Any] = {"job": job_dir.name, "status": status}
    if result is not None:
        row.update({k: result.get(k) for k in BASE_FIELDS[2:]})
    row["overrides"] = " ".join(overrides)
    row["params"] = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    row["error"] = (record or {}).get("error") or ""
    row["run_dir"] = str(job_dir)
    return row


def collect(sweep_dir: Path) -> SweepRows:
    """Every job's row, best first (by trainer.monitor), unfinished and failed jobs last."""
    rows = [job_row(d) for d in job_dirs(sweep_dir)]
    scored = [r for r in rows if isinstance(r.get("best_value"), (int, float))]
    mode = scored[0]["mode"] if scored else "max"
    monitor = scored[0]["monitor"] if scored else ""
    sign = -1.0 if mode == "min" else 1.0

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get("best_value")
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        return (0, -sign * value) if ok else (1, 0.0)

    rows.sort(key=key)
    values: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row["params"].items():
            values.setdefault(name, set()).add(value)
    params = [name for name, seen in values.items() if len(seen) > 1 or len(rows) == 1]
    return SweepRows(rows, params, monitor, mode)


def write_csv(summary: SweepRows, path: Path) -> None:
    """summary.csv: one row per job, the swept parameters as columns; temporary name, renamed."""
    fields = [*BASE_FIELDS, *summary.params, "overrides", "error", "run_dir"]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in summary.rows:
            writer.writerow({**row["params"], **row})
    tmp.replace(path)


def summarise(sweep_dir: Path) -> SweepRows | None:
    """Write summary.csv and summary.png into `sweep_dir`; None when it holds no job yet."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir() or not job_dirs(sweep_dir):
        return None
    summary = collect(sweep_dir)
    write_csv(summary, sweep_dir / "summary.csv")
    from unetcli.sweeps.plots import plot_summary  # matplotlib is imported only here

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

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        summary = summarise(Path(config.hydra.sweep.dir))
        if summary is not None and summary.failed:
            jobs = ", ".join(r["job"] for r in summary.failed)
            report(f"{len(summary.failed)} sweep job(s) failed ({jobs}); their errors are in "
                   f"{config.hydra.sweep.dir}/summary.csv. Fix them and start the same sweep "
                   "again with the same hydra.sweep.dir: finished jobs are skipped.")
            raise SystemExit(1)
