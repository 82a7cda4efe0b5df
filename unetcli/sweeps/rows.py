"""The rows of a sweep's summary, read from its job folders: one per job, best first.

Each job folder holds `sweep_job.json` (its overrides and status, see
`records`) and, once finished, `result.json`; a job still running or stopped
half-way has only the first, and comes after the finished ones.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

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
