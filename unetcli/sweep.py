"""summary.csv at the end of a multirun: each job's overrides and its best metric."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from unetcli.distributed.env import is_secondary_process

RESULT_FILE = "result.json"


class SweepSummary(Callback):
    """Collect every job's result.json into `<sweep dir>/summary.csv`."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if is_secondary_process():  # under torchrun every process runs the sweep; one writes
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = []
        for job_dir in sorted(sweep_dir.iterdir(), key=_job_number):
            result = job_dir / RESULT_FILE
            if not result.is_file():
                continue
            overrides_file = job_dir / ".hydra" / "overrides.yaml"
            overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
            data = json.loads(result.read_text())
            rows.append(
                {
                    "job": job_dir.name,
                    "overrides": " ".join(overrides),
                    "monitor": data.get("monitor", ""),
                    "best_value": data.get("best_value", ""),
                    "best_epoch": data.get("best_epoch", ""),
                    "mode": data.get("mode", "max"),
                    "run_dir": str(job_dir),
                }
            )
        if not rows:
            return
        path = sweep_dir / "summary.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        sign = -1.0 if rows[0]["mode"] == "min" else 1.0
        best = max(rows, key=lambda r: sign * float(r["best_value"]))
        print(f"\nsweep summary: {path} ({len(rows)} jobs)")
        for row in rows:
            print(f"  job {row['job']}: {row['overrides']}  {row['monitor']}={row['best_value']}")
        print(f"  best {best['monitor']}: job {best['job']} ({best['overrides']})")


def _job_number(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, path.name)
