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
from unetcli.core.hardware import Runtime
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


def _targets(task: Task, batch: int, size: tuple[int, int], device) -> torch.Tensor:
    if task.kind == "multilabel":
        return torch.randint(0, 2, (batch, task.num_classes, *size), device=device)
    return torch.randint(0, max(2, task.num_classes), (batch, *size), device=device)


def measure(
    cfg: DictConfig, name: str, model_cfg: DictConfig, runtime: Runtime, shape: tuple[int, int, int]
) -> Measurement:
    """`cfg.plan.steps` timed steps after one warm-up; shape is (batch, height, width)."""
    batch, *size = shape
    result = Measurement(name, tuple(size), batch)
    task = Task.from_config(cfg.dataset)
    device = runtime.device
    try:
        step = fresh_step(cfg, runtime, build(cfg.loss, "loss", task=task), model_cfg)
        images = torch.randn(batch, int(cfg.dataset.in_channels), *size)
        batch_of = {"image": images, "mask": _targets(task, batch, tuple(size), "cpu")}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times: list[float] = []
        for _ in range(int(cfg.plan.steps) + 1):
            if times and times[0] > float(cfg.plan.max_step_s):
                break  # the warm-up alone says too slow: its time stands for the step
            start = time.perf_counter()
            step(batch_of)  # the trainer's step; reading its loss waits for the device
            times.append(time.perf_counter() - start)
    except torch.OutOfMemoryError:
        result.failed = "out of memory"
        return result
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result.step_s = min(times[1:] or times)
    result.images_per_s = batch / result.step_s
    if device.type == "cuda":
        result.peak_bytes = int(torch.cuda.max_memory_allocated(device))
    return result
