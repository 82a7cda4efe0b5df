"""One step of the run's own work in a candidate setting: a training step, or a forward pass.

Each candidate gets its own copy of the model, built from the same seed, so
the candidates do identical work; the step returns a number that is not finite
when the setting breaks the numbers (e.g. fp16 overflowing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from unetcli.core.hardware import Runtime
from unetcli.models.contract import build_model
from unetcli.training.loop import compute_loss, crop_to_output, with_context
from unetcli.training.step import build_optimizer

BatchStep = Callable[[dict], float]


@dataclass
class TrainingWork:
    """What a training step needs besides the setting: the run's config and loss."""

    cfg: DictConfig
    loss_fn: torch.nn.Module


def training_step(work: TrainingWork, runtime: Runtime) -> BatchStep:
    """The trainer's step (forward, loss, backward, optimizer) on a fresh model in `runtime`."""
    torch.manual_seed(0)
    model = runtime.prepare_model(build_model(work.cfg.model)).train()
    optimizer = build_optimizer(work.cfg.optimizer, model.parameters())
    scaler = runtime.grad_scaler()
    mirror = work.cfg.trainer.mirror_context

    def step(batch: dict) -> float:
        images = runtime.to_input(with_context(batch["image"], model, mirror))
        masks = batch["mask"].to(runtime.device, non_blocking=runtime.pin_memory)
        with runtime.autocast():
            logits = model(images)
        loss = compute_loss(work.loss_fn, logits.float(), batch, crop_to_output(masks, logits))
        value = loss.item()
        if not torch.isfinite(loss):
            return value
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return value

    return step


def forward_step(model: torch.nn.Module, runtime: Runtime) -> BatchStep:
    """Inference's forward pass (no gradients) on `model` prepared for `runtime`."""
    model = runtime.prepare_model(model).eval()

    @torch.no_grad()
    def step(batch: dict) -> float:
        with runtime.autocast():
            logits = model(runtime.to_input(batch["image"]))
        return float(logits.float().abs().mean())

    return step
