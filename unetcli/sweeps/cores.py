"""Dividing the machine's cores among the jobs a parallel launcher runs at the same time.

Each training process would otherwise start as many torch threads as there are
cores, and as many loader workers, so N parallel jobs ask for N times the
machine and spend their time waiting for each other.
"""

from __future__ import annotations

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from unetcli.core.cpus import usable_cores
from unetcli.core.hardware import rule_workers


def parallel_jobs(launcher: DictConfig, cpus: int) -> int:
    """How many jobs the launcher runs at once (joblib: n_jobs, -1 all cores, -2 all but one)."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.n_jobs)
    return n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)


def share_cores(cfg: DictConfig) -> int:
    """Give this job its share of the cores: torch threads and (when auto) loader workers.

    Returns the share. With a launcher that runs one job at a time nothing changes.
    """
    cpus = usable_cores()
    jobs = parallel_jobs(HydraConfig.get().launcher, cpus)
    if jobs <= 1:
        return cpus
    share = max(1, cpus // jobs)
    torch.set_num_threads(share)
    if cfg.hardware.num_workers == "auto":
        cuda = cfg.hardware.device != "cpu" and torch.cuda.is_available()
        cfg.hardware.num_workers = rule_workers(share, cuda)
    print(f"sweep: {jobs} jobs at once on {cpus} cores: {share} torch threads each, "
          f"hardware.num_workers={cfg.hardware.num_workers}")
    return share
