"""Prediction batches between host and device: one upload, one download, no needless waits.

On CUDA a copy from pageable host memory is staged and blocks; from pinned (page-locked)
memory it is a DMA that runs beside the GPU's work. So a batch is stacked straight into
pinned memory (`torch.stack` of pinned tensors would make an unpinned copy), and the
probabilities come back into pinned memory without blocking, with a single wait for the
device before the host reads them. On the CPU both are the plain operations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unetcli.core.hardware import Runtime, sync


def pins(runtime: Runtime) -> bool:
    """Whether host buffers are pinned: asked for (`hardware.pin_memory`) and useful (CUDA)."""
    return runtime.pin_memory and runtime.device.type == "cuda"


def stack_batch(images: Sequence[torch.Tensor], runtime: Runtime) -> torch.Tensor:
    """`images` (each C, H, W) stacked into one batch, in pinned memory where `pins(runtime)`.

    Stacking writes into the pinned buffer directly: stacking first and pinning after would
    copy the batch twice.
    """
    images = list(images)
    if not pins(runtime):
        return torch.stack(images)
    first = images[0]
    out = torch.empty((len(images), *first.shape), dtype=first.dtype, pin_memory=True)
    return torch.stack(images, out=out)


def to_host(probabilities: torch.Tensor, runtime: Runtime) -> np.ndarray:
    """`probabilities` as a NumPy array on the host.

    The device-to-host copy is queued without blocking (into pinned memory where
    `pins(runtime)`), then the device is waited for once, before the host reads it.
    """
    if probabilities.device.type == "cpu":
        return probabilities.numpy()
    host = torch.empty(probabilities.shape, dtype=probabilities.dtype, pin_memory=pins(runtime))
    host.copy_(probabilities, non_blocking=True)
    sync(probabilities.device)
    return host.numpy()
