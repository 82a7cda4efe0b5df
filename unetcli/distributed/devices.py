"""Which GPU each process of a job trains on, and how DistributedDataParallel wraps it."""

from __future__ import annotations

import os

from unetcli.distributed.env import Placement
from unetcli.errors import UnetError


def local_device(placement: Placement, devices: int, visible: str | None = None) -> int:
    """This process's CUDA device index among the `devices` it sees.

    Each process of a machine needs a GPU of its own: two on one GPU make NCCL fail
    with "Duplicate GPU detected" far from the cause. A process that sees one GPU
    named in CUDA_VISIBLE_DEVICES (srun --gpus-per-task) has its own, device 0.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    own_gpu = devices == 1 and bool(visible) and len(visible.split(",")) == 1
    if own_gpu:
        return 0
    if placement.local_rank < devices:
        return placement.local_rank
    raise UnetError(
        f"process {placement.local_rank} of {placement.local_world_size} on this machine has "
        f"no GPU of its own: the machine shows it {devices} CUDA device(s), so two processes "
        "would share one GPU, which NCCL refuses (\"Duplicate GPU detected\") and which "
        "would halve each one's speed anyway. Start at most one process per GPU "
        f"(hardware.devices, torchrun --nproc-per-node, srun --ntasks-per-node <= {devices}), "
        "or give each task its own GPU (srun --gpus-per-task=1, which sets CUDA_VISIBLE_DEVICES)."
    )


def ddp_options(on_cuda: bool, device: int | None, sync_batchnorm: bool) -> dict:
    """DistributedDataParallel's keywords for this job.

    SyncBatchNorm already gives every process the same statistics, so broadcasting the
    buffers from rank 0 before each forward pass is a needless collective per step;
    gradients as views of the all-reduce buckets save a copy of every gradient.
    """
    return {
        "device_ids": [device] if on_cuda else None,
        "broadcast_buffers": not sync_batchnorm,
        "gradient_as_bucket_view": True,
    }
