"""One pass over the training data, and one scoring pass over labelled data."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.inference.overlap_tile import mirror_pad
from unetcli.metrics import METRIC_NAMES, per_image_metrics
from unetcli.task import Task


def with_context(
    images: torch.Tensor, model: torch.nn.Module, mirror_context: str | bool
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
    margin = int(getattr(model, "output_margin", 0))
    if not margin or mirror_context is False:
        return images
    if mirror_context == "auto":
        if min(images.shape[-2:]) >= int(getattr(model, "tile_size", 0)):
            return images
    elif mirror_context is not True:
        raise UnetError(
            f"trainer.mirror_context must be auto, true or false, got {mirror_context!r}"
        )
    return mirror_pad(images, margin, margin, margin, margin)


def crop_to_output(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Centre-crop a mask or weight map (N, H, W) to the logits' height and width.

    A valid-convolution model (unet_original) predicts only the centre of its
    input, output_margin pixels in from each side; its loss and metrics must see
    the same window of the mask. Same-size outputs pass through unchanged.
    """
    height, width = logits.shape[-2:]
    if target.shape[-2:] == (height, width):
        return target
    top = (target.shape[-2] - height) // 2
    left = (target.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise UnetError(
            f"the model's output ({height}x{width}) is larger than the mask "
            f"({target.shape[-2]}x{target.shape[-1]}); it cannot be scored"
        )
    return target[..., top : top + height, left : left + width]


def compute_loss(
    loss_fn: torch.nn.Module, logits: torch.Tensor, batch: dict, masks: torch.Tensor
) -> torch.Tensor:
    """The loss of a batch, passing the weight map when the data pipeline made one."""
    weight = batch.get("weight")
    if weight is None:
        return loss_fn(logits, masks)
    weight = crop_to_output(weight.to(logits.device), logits)
    return loss_fn(logits, masks, weight)


@dataclass
class EpochResult:
    loss: float
    steps: int


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    scaler: torch.amp.GradScaler,
    *,
    on_step: Callable[[int, float], None] | None = None,
    max_steps: int | None = None,
    grad_clip_norm: float | None = None,
    desc: str = "train",
    progress: bool = True,
    mirror_context: str | bool = "auto",
) -> EpochResult:
    """Train for one epoch; `on_step(step_in_epoch, loss)` is called after every step."""
    model.train()
    total, steps = 0.0, 0
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for batch in bar:
        images = runtime.to_input(with_context(batch["image"], model, mirror_context))
        masks = batch["mask"].to(runtime.device, non_blocking=runtime.pin_memory)
        with runtime.autocast():
            logits = model(images)
        masks = crop_to_output(masks, logits)
        loss = compute_loss(loss_fn, logits.float(), batch, masks)
        if not math.isfinite(loss.item()):
            raise UnetError(
                f"the training loss became {loss.item()} at step {steps + 1}; lower "
                "optimizer.lr or try hardware.precision=fp32"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip_norm:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip_norm)
        scaler.step(optimizer)
        scaler.update()
        steps += 1
        total += loss.item()
        bar.set_postfix(loss=f"{total / steps:.4f}")
        if on_step is not None:
            on_step(steps, loss.item())
        if max_steps and steps >= max_steps:
            break
    bar.close()
    return EpochResult(total / max(steps, 1), steps)


@dataclass
class ScoreResult:
    """Per-image metrics of a scoring pass, plus a few examples to look at."""

    loss: float | None
    per_image: dict[str, list[float]]
    indices: list[int]
    examples: dict[str, torch.Tensor] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        out = {name: sum(v) / max(len(v), 1) for name, v in self.per_image.items()}
        if self.loss is not None:
            out = {"loss": self.loss, **out}
        return out


@torch.no_grad()
def score(
    model: torch.nn.Module,
    loader: DataLoader,
    runtime: Runtime,
    task: Task,
    *,
    loss_fn: torch.nn.Module | None = None,
    threshold: float = 0.5,
    example_indices: frozenset[int] = frozenset(),
    desc: str = "validate",
    progress: bool = True,
    mirror_context: str | bool = "auto",
) -> ScoreResult:
    """Run the model over labelled data; per-image metrics at the loader's resolution.

    The dataset items whose index is in `example_indices` are kept (input,
    truth, prediction) for a picture of how the model is doing.
    """
    model.eval()
    per_image: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    indices: list[int] = []
    loss_sum, count = 0.0, 0
    kept: dict[str, list[torch.Tensor]] = {"image": [], "mask": [], "pred": []}
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        images = runtime.to_input(with_context(batch["image"], model, mirror_context))
        masks = batch["mask"].to(runtime.device)
        with runtime.autocast():
            logits = model(images)
        logits = logits.float()
        masks = crop_to_output(masks, logits)
        if loss_fn is not None:
            loss_sum += compute_loss(loss_fn, logits, batch, masks).item() * len(images)
        count += len(images)
        pred = task.labels(task.probabilities(logits), threshold)
        for name, values in per_image_metrics(pred, masks, task).items():
            per_image[name].extend(values.tolist())
        indices.extend(batch["index"].tolist())
        keep = [i for i, index in enumerate(batch["index"].tolist()) if index in example_indices]
        if keep:
            kept["image"].append(crop_to_output(batch["image"][keep], logits))
            kept["mask"].append(masks[keep].cpu())
            kept["pred"].append(pred[keep].cpu())
    examples = _stack_examples(kept)
    loss = loss_sum / count if loss_fn is not None and count else None
    return ScoreResult(loss, per_image, indices, examples)


def _stack_examples(kept: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate kept examples, resizing to the first one's size when images differ in size."""
    if not kept["image"]:
        return {}
    height, width = kept["image"][0].shape[-2:]
    out = {}
    for key, parts in kept.items():
        resized = []
        for part in parts:
            if part.shape[-2:] != (height, width):
                mode = "bilinear" if key == "image" else "nearest"
                planes = part.ndim == 4  # images, and multilabel masks (N, C, H, W)
                x = part.float() if planes else part[:, None].float()
                x = torch.nn.functional.interpolate(x, size=(height, width), mode=mode)
                part = x if key == "image" else (x if planes else x[:, 0]).to(part.dtype)
            resized.append(part)
        out[key] = torch.cat(resized)
    return out
