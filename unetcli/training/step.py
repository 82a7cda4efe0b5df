"""One training step: forward, loss, backward, optimizer. The trainer runs it, the hardware
tuner times it in each candidate setting, and `unet plan` times it at each candidate size,
so what is measured is what trains.

Also the batch-level pieces the step and validation share: the model's input with mirrored
context, the mask cropped to the output, the loss with an optional weight map.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from unetcli.config.instantiate import build
from unetcli.core.hardware import Runtime
from unetcli.core.spatial import center_crop, mirror_pad
from unetcli.distributed.processes import Processes, SingleProcess
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel, build_model

MIRROR_CONTEXT = ("auto", True, False)


def build_optimizer(
    optimizer_cfg: DictConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer of `optimizer=` (a partial `_target_`) over `params`."""
    return build(optimizer_cfg, "optimizer")(params)


def with_context(
    images: torch.Tensor, model: SegmentationModel, mirror_context: str | bool
) -> torch.Tensor:
    """Mirror-pad a batch by the model's output_margin, or leave it, as `mirror_context` says.

    A valid-convolution model (unet_original) predicts only the centre of its
    input. false: the input is used as it is and the mask is cropped to the
    output (the paper's 572 -> 388 training tiles). true: mirrored context of
    output_margin pixels is added on each side first, as overlap-tile
    prediction does, so the output covers the whole input. auto: true for
    inputs smaller than one of the model's tiles (572x572 for the paper's net),
    which overlap-tile prediction also covers as one mirror-padded tile; larger
    inputs are used as the paper's tiles. Models without a margin are never padded.
    """
    if mirror_context not in MIRROR_CONTEXT:
        raise UnetError(
            f"trainer.mirror_context must be auto, true or false, got {mirror_context!r}"
        )
    margin = model.output_margin
    if not margin or mirror_context is False:
        return images
    if mirror_context == "auto" and min(images.shape[-2:]) >= (model.tile_size or 0):
        return images
    return mirror_pad(images, margin, margin, margin, margin)


def crop_to_output(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Centre-crop a mask or weight map to the logits' height and width.

    A valid-convolution model (unet_original) predicts only the centre of its
    input, output_margin pixels in from each side; its loss and metrics must see
    the same window of the mask. Same-size outputs pass through unchanged.
    """
    try:
        return center_crop(target, logits.shape[-2:])
    except ValueError as err:
        raise UnetError(
            f"the model's output {tuple(logits.shape[-2:])} is larger than the mask "
            f"{tuple(target.shape[-2:])}, so it cannot be scored; check model= and "
            "dataset.image_size"
        ) from err


def compute_loss(
    loss_fn: torch.nn.Module, logits: torch.Tensor, batch: dict, masks: torch.Tensor
) -> torch.Tensor:
    """The loss of a batch, passing the weight map when the data pipeline made one."""
    weight = batch.get("weight")
    if weight is None:
        return loss_fn(logits, masks)
    weight = crop_to_output(weight.to(logits.device), logits)
    return loss_fn(logits, masks, weight)


def gradients_finite(parameters: Iterable[torch.nn.Parameter]) -> bool:
    """One sync: the norm of all gradients is finite."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))  # foreach kernels


@dataclass(frozen=True)
class StepResult:
    """One step's loss; `bad` names what was not finite ("loss", "gradient"), in which case
    the optimizer was not stepped; `images` is the model's input (to find the culprit)."""

    loss: float
    bad: str | None
    images: torch.Tensor


@dataclass
class TrainingStep:
    """Forward, loss, backward and optimizer step of `model` on one batch, in `runtime`.

    `net` is what the forward pass calls (DistributedDataParallel over several processes);
    `processes` makes a batch Dice cover every process's images and lets every process skip
    a bad step together.
    """

    model: SegmentationModel
    optimizer: torch.optim.Optimizer
    loss_fn: torch.nn.Module
    runtime: Runtime
    mirror_context: str | bool = "auto"
    grad_clip_norm: float | None = None
    processes: Processes | None = None
    net: torch.nn.Module | None = None

    def __post_init__(self) -> None:
        self.processes = self.processes or SingleProcess()
        self.net = self.net or self.model
        self.scaler = self.runtime.grad_scaler()
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def __call__(self, batch: dict) -> StepResult:
        runtime, processes = self.runtime, self.processes
        images = runtime.to_input(with_context(batch["image"], self.model, self.mirror_context))
        masks = batch["mask"].to(runtime.device, non_blocking=runtime.pin_memory)
        with runtime.autocast():
            logits = self.net(images)
        masks = crop_to_output(masks, logits)
        with processes.whole_batch():  # a batch Dice covers every process's images
            loss = compute_loss(self.loss_fn, logits.float(), batch, masks)
        value = loss.item()
        self.optimizer.zero_grad(set_to_none=True)
        # Skipped before the optimizer and scaler see it, by every process alike.
        if not processes.all_true(math.isfinite(value)):
            return StepResult(value, "loss", images)
        self.scaler.scale(loss).backward()
        if self.grad_clip_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip_norm)
        if not self.scaler.is_enabled() and not gradients_finite(self.params):
            self.optimizer.zero_grad(set_to_none=True)  # (a scaler skips its own)
            return StepResult(value, "gradient", images)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(value, None, images)


def fresh_step(
    cfg: DictConfig, runtime: Runtime, loss_fn: torch.nn.Module, model_cfg: DictConfig | None = None
) -> TrainingStep:
    """The run's step on a fresh model (`model_cfg`, default the run's), built from seed 0 so
    that candidates do identical work: what the tuner and the plan time."""
    torch.manual_seed(0)
    model = runtime.prepare_model(build_model(model_cfg or cfg.model)).train()
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    trainer = cfg.trainer
    return TrainingStep(
        model, optimizer, loss_fn, runtime, trainer.mirror_context, trainer.grad_clip_norm
    )
