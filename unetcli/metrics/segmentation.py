"""Dice, IoU, pixel accuracy, precision and recall, one value per image.

Metrics are per image and then averaged (the Carvana leaderboard's mean Dice),
so a large image does not outweigh a small one. Each metric is the mean over
the task's foreground classes: class 1 (binary), classes 1..C-1
(multiclass), or every plane scored as its own binary mask (multilabel). A
class absent from both prediction and truth scores 1 (a correct empty
prediction), which is also how Carvana scores empty masks. Pixels whose
truth is `task.ignore_index` count nowhere, whatever was predicted there.
"""

from __future__ import annotations

import torch

from unetcli.core.task import Task
from unetcli.errors import UnetError

METRIC_NAMES = ("dice", "iou", "accuracy", "precision", "recall")


def _ratio(num: torch.Tensor, den: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """num / den; where den is zero: 1 if the image has nothing to find and found nothing."""
    return torch.where(den > 0, num / den.clamp(min=1), empty.float())


def _planes(
    pred: torch.Tensor, target: torch.Tensor, task: Task
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(predicted, true, scored) as bool (N, classes, pixels), one row per foreground class."""
    valid = task.valid(target)
    if task.multilabel:
        return pred.flatten(2) == 1, target.flatten(2) == 1, valid.flatten(2)
    classes = torch.tensor(task.foreground, device=pred.device).view(1, -1, 1)
    p, t = pred.flatten(1).unsqueeze(1), target.flatten(1).unsqueeze(1)
    return p == classes, t == classes, valid.flatten(1).unsqueeze(1)


def _accuracy(pred: torch.Tensor, target: torch.Tensor, task: Task) -> torch.Tensor:
    """Share of scored pixels predicted right (multilabel: mean over planes); 1 if none."""
    valid = task.valid(target)
    dims = tuple(range(2 if task.multilabel else 1, pred.ndim))
    right = ((pred == target) & valid).sum(dims).float()
    scored = valid.sum(dims).float()
    acc = torch.where(scored > 0, right / scored.clamp(min=1), torch.ones_like(scored))
    return acc.mean(1) if task.multilabel else acc


def per_image_metrics(
    pred: torch.Tensor, target: torch.Tensor, task: Task
) -> dict[str, torch.Tensor]:
    """Metrics of each image in a batch; returns name -> (N,) tensor.

    `pred` comes from `task.labels(task.probabilities(logits), threshold)`:
    (N, H, W) label maps, or (N, C, H, W) planes for a multilabel task, like
    `target`.
    """
    ndim = 4 if task.multilabel else 3
    if pred.shape != target.shape or pred.ndim != ndim:
        raise UnetError(
            f"metrics of a {task.kind} task (dataset.task) compare prediction and truth of one "
            f"{ndim}-dimensional shape, got {tuple(pred.shape)} and {tuple(target.shape)}; "
            "check dataset.task and dataset.num_classes against the masks"
        )
    p, t, valid = _planes(pred.long(), target.long(), task)
    p, t = p & valid, t & valid
    tp = (p & t).sum(-1).float()
    fp = (p & ~t).sum(-1).float()
    fn = (~p & t).sum(-1).float()
    empty = (tp + fp + fn) == 0
    out = {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, empty),
        "iou": _ratio(tp, tp + fp + fn, empty),
        "precision": _ratio(tp, tp + fp, empty),
        "recall": _ratio(tp, tp + fn, empty),
    }
    out = {name: values.mean(1) for name, values in out.items()}
    out["accuracy"] = _accuracy(pred.long(), target.long(), task)
    return {name: out[name] for name in METRIC_NAMES}
