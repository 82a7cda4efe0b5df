"""The files a sweep job leaves in its folder, which make a sweep resumable and summarisable.

`result.json` is the trainer's result (written last, so its presence means the
run finished); `sweep_job.json` is the sweep's own record of the job: its
overrides, its status (running, done, failed), start and end times and, for a
failed job, the error. Both are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unetcli.training.result import RESULT_FILE

JOB_FILE = "sweep_job.json"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's content, or None when it is missing or half-written."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_job(job_dir: Path) -> dict[str, Any] | None:
    return read_json(job_dir / JOB_FILE)


def read_result(job_dir: Path) -> dict[str, Any] | None:
    return read_json(job_dir / RESULT_FILE)


def write_job(job_dir: Path, record: dict[str, Any]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(job_dir / JOB_FILE, record)
