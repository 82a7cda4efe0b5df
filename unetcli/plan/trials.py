"""A few real training steps of one model at one size and batch, timed on this device.

Random images and masks of the dataset's shape go through the trainer's own step
(`unetcli.training.step`: the real model, loss and optimizer, forward, backward, step),
so the figure is what training costs here, less data loading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from unetcli.config.instantiate import build
from unetcli.core.hardware import Runtime, release_memory, sync
from unetcli.core.task import Task
from unetcli.training.step import fresh_step


@dataclass
class Measurement:
    """Images per second of one (model, size, batch), its peak memory, or why it failed."""

    model: str
    size: tuple[int, int]
    batch: int
    images_per_s: float = 0.0
    step_s: float = 0.0
    peak_bytes: int = 0
    failed: str | None = None
    #: Bytes of a checkpoint of this model: weights and optimizer state (see plan.search).
    state_bytes: int = 0


def _timed_steps(
    cfg: DictConfig, model_cfg: DictConfig, runtime: Runtime, shape: tuple[int, int, int]
) -> tuple[list[float], int]:
    """Seconds of a warm-up step and `cfg.plan.steps` more, of the trainer's own step, and
    the bytes of the model's weights and optimizer state after them."""
    batch, *size = shape
    task = Task.from_config(cfg.dataset)
    step = fresh_step(cfg, runtime, build(cfg.loss, "loss", task=task), model_cfg)
    images = torch.randn(batch, int(cfg.dataset.in_channels), *size)
    batch_of = {"image": images, "mask": _targets(task, batch, tuple(size), "cpu")}
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    times: list[float] = []
    for _ in range(int(cfg.plan.steps) + 1):
        if times and times[0] > float(cfg.plan.max_step_s):
            break  # the warm-up alone says too slow: its time stands for the step
        start = time.perf_counter()
        step(batch_of)  # the trainer's step
        sync(runtime.device)  # its backward pass and optimizer step done
        times.append(time.perf_counter() - start)
    return times, _state_bytes(step.model, step.optimizer)


def _state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    tensors = [*model.state_dict().values()]
    tensors += [v for state in optimizer.state.values() for v in state.values()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _targets(task: Task, batch: int, size: tuple[int, int], device) -> torch.Tensor:
    if task.kind == "multilabel":
        return torch.randint(0, 2, (batch, task.num_classes, *size), device=device)
    return torch.randint(0, max(2, task.num_classes), (batch, *size), device=device)


#: Allocation failures that cuDNN and cuBLAS report as plain RuntimeErrors.
ALLOCATION_FAILURES = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED")


def out_of_memory(err: BaseException) -> bool:
    """torch's OutOfMemoryError, or cuDNN/cuBLAS failing to allocate its workspace."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err) for m in ALLOCATION_FAILURES)


def measure(
    cfg: DictConfig, name: str, model_cfg: DictConfig, runtime: Runtime, shape: tuple[int, int, int]
) -> Measurement:
    """`cfg.plan.steps` timed steps after one warm-up; shape is (batch, height, width).

    Timed as the run computes (`runtime.apply()`: TF32 and cuDNN flags), the device
    waited for before each clock read; the model is released before the cache is
    emptied, so the next trial starts with the memory this one held.
    """
    batch, *size = shape
    result = Measurement(name, tuple(size), batch)
    runtime.apply()
    try:
        times, result.state_bytes = _timed_steps(cfg, model_cfg, runtime, shape)
    except RuntimeError as err:  # torch.OutOfMemoryError among them
        if not out_of_memory(err):
            raise
        result.failed = "out of memory"
        return result
    finally:
        release_memory(runtime.device)  # the step (model, optimizer) is unreferenced by now
    result.step_s = min(times[1:] or times)
    result.images_per_s = batch / result.step_s
    if runtime.device.type == "cuda":
        result.peak_bytes = int(torch.cuda.max_memory_allocated(runtime.device))
    return result
