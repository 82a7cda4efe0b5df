"""Process groups: a gloo group for figures and decisions, the backend's group for gradients.

Every process of a job joins one gloo group first. It carries what is small
and lives on the CPU: the agreed run folder, gathered per-image metrics,
early-stopping decisions. Gradients go through the backend `hardware.backend`
names (auto: nccl on CUDA, gloo on the CPU); on the CPU that is the same group.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist

from unetcli.distributed.env import RUN_TIME, Placement, wall_clock
from unetcli.errors import UnetError

BACKENDS = ("auto", "gloo", "nccl")
#: How long a collective waits for a process that stopped answering (torch's default is 30 min).
TIMEOUT = timedelta(minutes=10)


def choose_backend(requested: str, device_type: str) -> str:
    """gloo or nccl, as `hardware.backend` asks; auto takes nccl for CUDA and gloo otherwise."""
    if requested not in BACKENDS:
        raise UnetError(f"hardware.backend must be auto, gloo or nccl, got {requested!r}")
    if requested == "auto":
        return "nccl" if device_type == "cuda" else "gloo"
    if requested == "nccl" and device_type != "cuda":
        raise UnetError(
            "hardware.backend=nccl needs CUDA devices; on the CPU use hardware.backend=gloo "
            "(or auto)"
        )
    return requested


def use_sync_batchnorm(requested: object) -> bool:
    """Batch statistics over the global batch: torch's SyncBatchNorm on nccl, ours on gloo.

    auto and true are the same since batch norm can be synchronised on every
    backend; false keeps each process's own statistics (cheaper, not the same run).
    """
    if requested == "auto":
        return True
    if not isinstance(requested, bool):
        raise UnetError(f"hardware.sync_batchnorm must be auto, true or false, got {requested!r}")
    return requested


def join_control_group(placement: Placement, store: dist.Store | None = None) -> None:
    """Join the job's gloo group (through `store`, or MASTER_ADDR/MASTER_PORT as torchrun sets)."""
    if dist.is_initialized():
        return
    options: dict = {"init_method": "env://"} if store is None else {"store": store}
    if store is None:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise UnetError(
                f"this process has RANK and WORLD_SIZE but not {' and '.join(missing)}; start "
                "it with torchrun (under SLURM: srun running torchrun), which sets them"
            )
    dist.init_process_group(
        backend="gloo",
        rank=placement.rank,
        world_size=placement.world_size,
        timeout=TIMEOUT,
        **options,
    )


def gradient_group(backend: str) -> dist.ProcessGroup | None:
    """The group DistributedDataParallel reduces gradients in: None means the gloo group."""
    return None if backend == "gloo" else dist.new_group(backend=backend, timeout=TIMEOUT)


def agree_on_run_time() -> None:
    """Every process takes the main process's clock, so `${unet_now:...}` names one folder."""
    moment = [wall_clock() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(moment, src=0)
    os.environ[RUN_TIME] = repr(moment[0])


def quiet_unless_main(placement: Placement) -> None:
    """Processes other than the main one print nothing but errors (stderr stays open)."""
    if placement.is_main:
        return
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    warnings.simplefilter("ignore")


def leave() -> None:
    """Leave the process groups after a finished job (a failed one is torn down by its launcher)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_at_once() -> NoReturn:
    """End a process of a job whose work is done and whose groups are left: exit status 0.

    At the interpreter's shutdown the C++ threads behind torch.distributed (gloo's, the
    store client's) can still be joinable when their objects are destroyed, and a process
    that did all its work aborts ("terminate called without an active exception",
    SIGABRT), which its launcher reports as a failed job. Leaving the groups first made
    that rare, not impossible. Everything the work wrote is closed by then (files are
    renamed into place, trackers finished); the log handlers and the standard streams
    are flushed here.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
