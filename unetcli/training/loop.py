"""Batch-level pieces of training and validation: model input, loss, kept examples.

The epoch loops themselves live in `unetcli.training.trainer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from unetcli.core.spatial import center_crop, mirror_pad
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel

MIRROR_CONTEXT = ("auto", True, False)


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
