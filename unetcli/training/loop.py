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
from unetcli.metrics import METRIC_NAMES, per_image_metrics, predict_labels


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
) -> EpochResult:
    """Train for one epoch; `on_step(step_in_epoch, loss)` is called after every step."""
    model.train()
    total, steps = 0.0, 0
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for batch in bar:
        images = runtime.to_input(batch["image"])
        masks = batch["mask"].to(runtime.device, non_blocking=runtime.pin_memory)
        with runtime.autocast():
            logits = model(images)
        loss = loss_fn(logits.float(), masks)
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
    num_classes: int,
    *,
    loss_fn: torch.nn.Module | None = None,
    threshold: float = 0.5,
    example_indices: frozenset[int] = frozenset(),
    desc: str = "validate",
    progress: bool = True,
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
        images = runtime.to_input(batch["image"])
        masks = batch["mask"].to(runtime.device)
        with runtime.autocast():
            logits = model(images)
        logits = logits.float()
        if loss_fn is not None:
            loss_sum += loss_fn(logits, masks).item() * len(images)
        count += len(images)
        pred = predict_labels(logits, threshold)
        for name, values in per_image_metrics(pred, masks, num_classes).items():
            per_image[name].extend(values.tolist())
        indices.extend(batch["index"].tolist())
        keep = [i for i, index in enumerate(batch["index"].tolist()) if index in example_indices]
        if keep:
            kept["image"].append(batch["image"][keep])
            kept["mask"].append(batch["mask"][keep])
            kept["pred"].append(pred[keep].cpu())
    examples = {k: torch.cat(v) for k, v in kept.items() if v}
    loss = loss_sum / count if loss_fn is not None and count else None
    return ScoreResult(loss, per_image, indices, examples)
