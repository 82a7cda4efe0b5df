"""Dice, IoU, pixel accuracy, precision and recall, one value per image.

Metrics are per image and then averaged (the Carvana leaderboard's mean Dice),
so a large image does not outweigh a small one. For multi-class tasks each
metric is the mean over the foreground classes (1..C-1). A class absent from
both prediction and truth scores 1 (a correct empty prediction), which is also
how Carvana scores empty masks.
"""

from __future__ import annotations

import torch

METRIC_NAMES = ("dice", "iou", "accuracy", "precision", "recall")


def predict_labels(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Class index per pixel (N, H, W): sigmoid > threshold for one channel, argmax otherwise."""
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0].float()) > threshold).long()
    return logits.argmax(dim=1)


def _ratio(num: torch.Tensor, den: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """num / den; where den is zero: 1 if the image has nothing to find and found nothing."""
    return torch.where(den > 0, num / den.clamp(min=1), empty.float())


def per_image_metrics(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int
) -> dict[str, torch.Tensor]:
    """Metrics of each image in a batch of label maps (N, H, W); returns name -> (N,) tensor."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"metrics expect prediction and truth of the same (N, H, W) shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred = pred.long().flatten(1)
    target = target.long().flatten(1)
    if num_classes == 1:
        target = (target > 0).long()
    classes = [1] if num_classes <= 2 else list(range(1, num_classes))
    accuracy = (pred == target).float().mean(1)
    scores: dict[str, list[torch.Tensor]] = {"dice": [], "iou": [], "precision": [], "recall": []}
    for c in classes:
        p, t = pred == c, target == c
        tp = (p & t).sum(1).float()
        fp = (p & ~t).sum(1).float()
        fn = (~p & t).sum(1).float()
        empty = (tp + fp + fn) == 0
        scores["dice"].append(_ratio(2 * tp, 2 * tp + fp + fn, empty))
        scores["iou"].append(_ratio(tp, tp + fp + fn, empty))
        scores["precision"].append(_ratio(tp, tp + fp, empty))
        scores["recall"].append(_ratio(tp, tp + fn, empty))
    out = {name: torch.stack(values).mean(0) for name, values in scores.items()}
    out["accuracy"] = accuracy
    return {name: out[name] for name in METRIC_NAMES}
