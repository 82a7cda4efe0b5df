"""One job of a multirun, made safe to start again and unable to stop the rest of the sweep.

Starting a sweep again with the same `hydra.sweep.dir` reaches every job's
folder again: a job that finished with the same overrides is skipped (its
result is reused), one that started is resumed from its `last.pt`, and one that
fails records its error in `sweep_job.json` instead of ending the sweep (the
summary at the end reports it and makes the exit status non-zero).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from unetcli.errors import UnetError, report
from unetcli.sweeps.cores import share_cores
from unetcli.sweeps.records import read_job, read_result, write_job


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_sweep_job(cfg: DictConfig, train: Callable[[DictConfig], dict]) -> float | None:
    """Run (or skip, or resume) this job; returns its best metric, None when it failed."""
    hydra_cfg = HydraConfig.get()
    job_dir = Path(cfg.paths.run_dir)
    overrides = list(hydra_cfg.overrides.task)
    number = hydra_cfg.job.num
    previous = read_job(job_dir)
    same = previous is not None and previous["overrides"] == overrides
    if previous is not None and not same:
        report(f"sweep job {number}: {job_dir} holds a job with other overrides "
               f"({' '.join(previous['overrides'])}); left as it is. Start a sweep with "
               "other settings in a new hydra.sweep.dir.")
        return None
    result = read_result(job_dir)
    if same and previous["status"] == "done" and result is not None:
        print(f"sweep job {number}: already done in {job_dir}; skipped")
        return result["best_value"]
    last = job_dir / "checkpoints" / "last.pt"
    if same and last.is_file() and not cfg.trainer.resume:
        cfg.trainer.resume = str(last)
        print(f"sweep job {number}: resuming from {last}")
    share_cores(cfg)
    record = {"job": number, "overrides": overrides, "status": "running", "pid": os.getpid(),
              "started": time.time(), "finished": None, "error": None}
    write_job(job_dir, record)
    try:
        result = train(cfg)
    except Exception as err:  # one job's failure must not end the sweep
        detail = str(err) if isinstance(err, UnetError) else traceback.format_exc(limit=3)
        record.update(status="failed", finished=time.time(), error=_one_line(err))
        write_job(job_dir, record)
        (job_dir / "error.txt").write_text(detail)
        report(f"sweep job {number} ({' '.join(overrides)}) failed: {_one_line(err)}")
        return None
    record.update(status="done", finished=time.time())
    write_job(job_dir, record)
    return result["best_value"]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}" if not isinstance(err, UnetError) else text
