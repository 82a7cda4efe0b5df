"""Validation during training: loss and per-image metrics, and the images shown in TensorBoard.

Figures are computed per image at the loader's resolution and gathered from every process in
rank order before they are averaged, so they equal those of one process.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch

from unetcli.core.console import progress_bar
from unetcli.core.hardware import varying_shapes
from unetcli.core.spatial import center_crop
from unetcli.metrics import METRIC_NAMES, per_image_metrics
from unetcli.training.step import compute_loss, crop_to_output, with_context


@dataclass
class ScoreResult:
    """Per-image metrics of a validation pass, plus a few examples to look at."""

    loss: float | None
    per_image: dict[str, list[float]]
    examples: dict[str, torch.Tensor] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        out = {name: sum(v) / max(len(v), 1) for name, v in self.per_image.items()}
        if self.loss is not None:
            out = {"loss": self.loss, **out}
        return out


class Examples:
    """The validation images kept for the TensorBoard grid: input, truth and prediction."""

    def __init__(self, indices: frozenset[int]) -> None:
        self.indices = indices
        self.kept: dict[str, list[torch.Tensor]] = {"image": [], "mask": [], "pred": []}

    def add(self, batch: dict, masks: torch.Tensor, pred: torch.Tensor) -> None:
        keep = [i for i, index in enumerate(batch["index"].tolist()) if index in self.indices]
        if keep:
            self.kept["image"].append(center_crop(batch["image"][keep], pred.shape[-2:]))
            self.kept["mask"].append(masks[keep].cpu())
            self.kept["pred"].append(pred[keep].cpu())

    def stacked(self) -> dict[str, torch.Tensor]:
        """Concatenate kept examples, resizing to the first one's size when images differ."""
        if not self.kept["image"]:
            return {}
        size = tuple(self.kept["image"][0].shape[-2:])
        return {
            key: torch.cat([_resized(p, size, key) for p in parts])
            for key, parts in self.kept.items()
        }


def join_examples(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The examples several processes kept, in rank order, resized to the first one's size."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    size = tuple(parts[0]["image"].shape[-2:])
    return {key: torch.cat([_resized(p[key], size, key) for p in parts]) for key in parts[0]}


def _resized(part: torch.Tensor, size: tuple[int, int], key: str) -> torch.Tensor:
    if tuple(part.shape[-2:]) == size:
        return part
    if key == "image":
        return torch.nn.functional.interpolate(part.float(), size=size, mode="bilinear")
    flat = part.reshape(-1, 1, *part.shape[-2:]).float()
    out = torch.nn.functional.interpolate(flat, size=size, mode="nearest")
    return out.reshape(*part.shape[:-2], *size).to(part.dtype)


@torch.no_grad()
def score_validation(trainer: Any, model: torch.nn.Module) -> ScoreResult:
    """Loss and per-image metrics over the validation split, at the loader's resolution, of
    `model` (the trainer's, or its weight average with trainer.ema)."""
    model.eval()
    per_image: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    # (loss x images) per batch: summed in one order, whatever the number of processes.
    batch_losses: list[tuple[float, int]] = []
    examples = Examples(trainer.data.examples)
    loader = trainer.data.val_loader
    desc = "validate" if trainer.opts.progress and trainer.processes.is_main else None
    with varying_shapes() if trainer.data.val_sizes_vary else contextlib.nullcontext():
        for batch in progress_bar(loader, desc=desc, unit="batch", leave=False):
            _score_batch(trainer, model, batch, (per_image, batch_losses, examples))
    gather = trainer.processes.gather
    per_image = {k: gather(v) for k, v in per_image.items()}
    losses = gather(batch_losses)
    loss = sum(v for v, _ in losses) / max(sum(n for _, n in losses), 1)
    kept = join_examples(trainer.processes.gather_objects(examples.stacked()))
    return ScoreResult(loss, per_image, kept)


def _score_batch(
    trainer: Any, model: torch.nn.Module, batch: dict, into: tuple[dict, list, Examples]
) -> None:
    """One validation batch's loss, per-image metrics and examples, added to `into`."""
    per_image, batch_losses, examples = into
    batch = trainer.bad_files.filter(batch)  # dataset.on_bad_file
    if batch is None:
        return
    runtime = trainer.runtime
    images = with_context(batch["image"], model, trainer.opts.mirror_context)
    with runtime.autocast():
        logits = model(runtime.to_input(images)).float()
    masks = crop_to_output(batch["mask"].to(runtime.device), logits)
    loss = compute_loss(trainer.loss_fn, logits, batch, masks).item()
    batch_losses.append((loss * len(images), len(images)))
    pred = trainer.task.labels(trainer.task.probabilities(logits))
    for name, values in per_image_metrics(pred, masks, trainer.task).items():
        per_image[name].extend(values.tolist())
    examples.add(batch, masks, pred)
