"""One training step: forward, loss, backward, optimizer. The trainer runs it, the hardware
tuner times it in each candidate setting, and `unet plan` times it at each candidate size,
so what is measured is what trains.

Also the batch-level pieces the step and validation share: the model's input with mirrored
context, the mask cropped to the output, the loss with an optional weight map.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from unetcli.config.instantiate import build
from unetcli.core.hardware import Runtime, host_values
from unetcli.core.spatial import center_crop, mirror_pad
from unetcli.distributed.processes import Processes, SingleProcess
from unetcli.errors import UnetError
from unetcli.losses._targets import check_mask_values
from unetcli.models.contract import SegmentationModel, build_model, without_pretrained
from unetcli.training.param_groups import parameter_groups

MIRROR_CONTEXT = ("auto", True, False)


def build_optimizer(
    optimizer_cfg: DictConfig, model: torch.nn.Module | Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer of `optimizer=` (a partial `_target_`) over the model's parameters, the
    encoder's at optimizer.encoder_lr_factor x lr where that is set (training.param_groups)."""
    node = OmegaConf.to_container(optimizer_cfg, resolve=True)
    factor = node.pop("encoder_lr_factor", None)
    groups = parameter_groups(model, float(node.get("lr") or 0.0), factor)
    return build(OmegaConf.create(node), "optimizer")(groups)


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


@dataclass(frozen=True)
class StepResult:
    """One step's loss; `bad` names what was not finite ("loss", "gradient"), in which case
    the optimizer was not stepped; `images` is the model's input (to find the culprit).
    `skipped`: fp16's grad scaler found an overflow and skipped the optimizer (and backed
    off its scale): no training step was taken, though nothing is wrong with the run.
    `batch`: the loader batch of `images` (of several accumulated, the first whose loss was
    not finite, else the last)."""

    loss: float
    bad: str | None
    images: torch.Tensor
    skipped: bool = False
    batch: dict | None = None


@dataclass
class TrainingStep:
    """Forward, loss, backward and optimizer step of `model` on one batch, in `runtime`.

    `net` is what the forward pass calls (DistributedDataParallel over several processes);
    `processes` makes a batch Dice cover every process's images and lets every process skip
    a bad step together.

    The step waits for the device once: the loss and the gradient norm are read together
    (`host_values`) after the backward pass, and the processes agree on the host values.
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

    def __call__(self, batch: dict | list[dict]) -> StepResult:
        """One optimizer step on a batch, or on the summed gradients of a list of batches
        (trainer.accumulate_batches), each loss weighted by its batch's share of images."""
        group = batch if isinstance(batch, list) else [batch]
        total = sum(len(b["mask"]) for b in group)
        self.optimizer.zero_grad(set_to_none=True)
        losses, inputs = [], []
        for i, micro in enumerate(group):
            # Processes exchange gradients once, after the last batch of the group.
            last = i == len(group) - 1 or not hasattr(self.net, "no_sync")
            with contextlib.nullcontext() if last else self.net.no_sync():
                loss, images = self._forward(micro)
                share = loss if len(group) == 1 else loss * (len(micro["mask"]) / total)
                self.scaler.scale(share).backward()
            losses.append(loss.detach())
            inputs.append(images)
        self.scaler.unscale_(self.optimizer)  # (nothing without a scaler; its step would)
        *values, norm = host_values(*losses, self._gradient_norm())  # the step's one wait
        value = values[0] if len(group) == 1 else sum(
            v * len(b["mask"]) / total for v, b in zip(values, group)
        )
        culprit = next((i for i, v in enumerate(values) if not math.isfinite(v)), len(group) - 1)
        return self._finish(value, norm, inputs[culprit], group[culprit])

    def _forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one loader batch (a graph to back-propagate) and the model's input."""
        runtime = self.runtime
        if runtime.device.type != "cpu":  # checked on the host: no wait for the device
            check_mask_values(getattr(self.loss_fn, "task", None), batch["mask"])
        images = runtime.to_input(with_context(batch["image"], self.model, self.mirror_context))
        masks = batch["mask"].to(runtime.device, non_blocking=runtime.pin_memory)
        with runtime.autocast():
            logits = self.net(images)
        masks = crop_to_output(masks, logits)
        with self.processes.whole_batch():  # a batch Dice covers every process's images
            loss = compute_loss(self.loss_fn, logits.float(), batch, masks)
        return loss, images

    def trainable(self, net: torch.nn.Module) -> None:
        """Call `net` from now on and clip the parameters that now take gradients (after
        trainer.freeze_encoder_epochs changed which do)."""
        self.net = net
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def _gradient_norm(self) -> torch.Tensor:
        """The norm of all gradients, clipped to `grad_clip_norm` where set (no host read)."""
        if self.grad_clip_norm:
            return torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip_norm)
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.runtime.device)
        return torch.nn.utils.get_total_norm(grads)  # foreach kernels

    def _finish(self, value: float, norm: float, images: torch.Tensor, batch: dict) -> StepResult:
        """Step the optimizer, or skip: a non-finite loss by every process alike, a
        non-finite gradient as the scaler would (the scaler backs off its scale)."""
        if not self.processes.all_true(math.isfinite(value)):
            return self._skip(StepResult(value, "loss", images, batch=batch))
        if not math.isfinite(norm):
            if self.scaler.is_enabled():  # fp16 overflow: the scaler's own business
                return self._skip(StepResult(value, None, images, skipped=True, batch=batch))
            return self._skip(StepResult(value, "gradient", images, batch=batch))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(value, None, images, batch=batch)

    def _skip(self, result: StepResult) -> StepResult:
        """No optimizer step; the scaler, which has unscaled, updates (backing off its scale
        after an overflow) so its next step starts clean."""
        if self.scaler.is_enabled():
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return result


def fresh_step(
    cfg: DictConfig, runtime: Runtime, loss_fn: torch.nn.Module, model_cfg: DictConfig | None = None
) -> TrainingStep:
    """The run's step on a fresh model (`model_cfg`, default the run's), built from seed 0 so
    that candidates do identical work: what the tuner and the plan time."""
    torch.manual_seed(0)
    # Timing needs no pretrained weights (nor their file or hub cache).
    model = runtime.prepare_model(build_model(without_pretrained(model_cfg or cfg.model)))
    model = model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    trainer = cfg.trainer
    return TrainingStep(
        model, optimizer, loss_fn, runtime, trainer.mirror_context, trainer.grad_clip_norm
    )
