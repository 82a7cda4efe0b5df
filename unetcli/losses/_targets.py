"""What every loss does with its target: check it against the task, make it dense, mask it.

Targets are (N, H, W) class indices for binary and multiclass tasks and
(N, C, H, W) 0/1 planes for multilabel ones; pixels equal to
`task.ignore_index` count in no loss. A target that does not fit the task
(wrong shape, a value that is no class) is a dataset or config mistake, so
it stops the run with a UnetError naming the keys to check.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from unetcli.core.task import Task
from unetcli.distributed.batch_sums import global_sum
from unetcli.errors import UnetError

#: Losses that can train each kind of task, as `loss=NAME` (for refusal messages).
CAPABLE = {
    "binary": ("bce", "bce_dice", "ce", "dice", "focal", "jaccard", "lovasz", "weighted_ce"),
    "multiclass": ("bce", "bce_dice", "ce", "dice", "focal", "jaccard", "lovasz", "weighted_ce"),
    "multilabel": ("bce", "bce_dice", "dice", "focal", "jaccard", "lovasz"),
}


def refuse_unless(task: Task, name: str, kinds: Sequence[str], why: str) -> None:
    """At construction: a UnetError naming `loss=name` when it cannot train `task`."""
    if task.kind in kinds:
        return
    choices = ", ".join(f"loss={n}" for n in CAPABLE[task.kind] if n != name)
    raise UnetError(
        f"loss={name} cannot train a {task.kind} task (dataset.task={task.kind}): {why}. "
        f"Choose one that can, e.g. {choices}."
    )


def check_target(task: Task, logits: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a UnetError when logits and target do not fit the task and each other."""
    planes = task.multilabel
    want = "(N, C, H, W) 0/1 planes" if planes else "(N, H, W) class indices"
    if logits.ndim != 4 or logits.shape[1] != task.num_classes:
        raise UnetError(
            f"the model gives outputs of shape {tuple(logits.shape)} but dataset.num_classes is "
            f"{task.num_classes}; model.num_classes must equal dataset.num_classes"
        )
    expected = (logits.shape[0], *(logits.shape[1:] if planes else logits.shape[2:]))
    if tuple(target.shape) != tuple(expected):
        raise UnetError(
            f"a {task.kind} task (dataset.task, dataset.num_classes={task.num_classes}) trains "
            f"on masks of {want}, shape {tuple(expected)} here, but the dataset gave "
            f"{tuple(target.shape)}. Check dataset.task and dataset.num_classes against the "
            "masks (a multilabel task reads one mask per class: dataset.layout.class_folders)."
        )
    if target.device.type == "cpu":
        check_mask_values(task, target)


def check_mask_values(task: Task | None, target: torch.Tensor) -> None:
    """Raise a UnetError when a mask holds a value that is no label of `task`.

    Reading the verdict is a host read: on a GPU it would wait for the device in every
    step, so `check_target` checks masks on the CPU only and a GPU training step checks
    its batch's masks here before uploading them. None (a loss without a task): no check.
    """
    if task is None:
        return
    scored = target if task.ignore_index is None else target[task.valid(target)]
    if scored.numel() == 0:
        return
    low, high = torch.aminmax(scored)
    if bool((low < 0) | (high >= task.label_count)):
        values = scored.unique()
        found = values[(values < 0) | (values >= task.label_count)].tolist()[:6]
        ignore = "" if task.ignore_index is None else f" (or {task.ignore_index}, ignored)"
        raise UnetError(
            f"the masks hold values {found}, which are no label of this {task.kind} task with "
            f"dataset.num_classes={task.num_classes}: expected 0..{task.label_count - 1}"
            f"{ignore}. Set dataset.num_classes and dataset.task to match the masks, or mark "
            "unlabelled pixels with dataset.ignore_index."
        )


def scored_pixels(task: Task, target: torch.Tensor) -> torch.Tensor | None:
    """1.0 where the target counts, 0.0 where it is ignored; None when every pixel counts.

    Shaped to broadcast against per-channel values: (N, C, H, W) for multilabel
    planes, (N, 1, H, W) otherwise. None keeps the plain means of the losses
    (the very numbers torch's own reductions give) when nothing is ignored.
    """
    if task.ignore_index is None:
        return None
    valid = task.valid(target).float()
    return valid if task.multilabel else valid.unsqueeze(1)


def dense_target(
    task: Task, logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the 0/1 target of each output channel as float (N, C, H, W), `scored_pixels`).

    Binary: the mask itself; multiclass: one-hot over the classes (ignored
    pixels one-hot as class 0, and not scored); multilabel: the planes.
    """
    check_target(task, logits, target)
    scored = scored_pixels(task, target)
    if task.multilabel:
        return (target == 1).float(), scored
    if task.kind == "binary":
        return (target == 1).unsqueeze(1).float(), scored
    hot = F.one_hot(_labels(task, target), task.num_classes).permute(0, 3, 1, 2).float()
    return hot, scored


def _labels(task: Task, target: torch.Tensor) -> torch.Tensor:
    """Class indices as long, ignored pixels set to 0 (they are not scored)."""
    if task.ignore_index is None:
        return target.long()
    return torch.where(task.valid(target), target, torch.zeros_like(target)).long()


def class_labels(
    task: Task, logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(labels long (N, H, W), ignored pixels set to 0; 1.0 where scored (N, H, W) or None)."""
    check_target(task, logits, target)
    scored = None if task.ignore_index is None else task.valid(target).float()
    return _labels(task, target), scored


def log_probabilities(task: Task, logits: torch.Tensor) -> torch.Tensor:
    """log p per label (N, L, H, W); a binary logit becomes two: log(1 - p), log(p)."""
    logits = logits.float()
    if task.kind == "binary":
        return torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=1)
    return F.log_softmax(logits, dim=1)


def masked_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """sum(values * weights) / sum(weights), the plain mean for None; 0 (still
    differentiable) when nothing is scored."""
    if weights is None:
        return values.mean()
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def soft_overlap(
    task: Task, logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel sums over the scored pixels of the batch: (|P*T|, |P|, |T|).

    In a training step of several processes, the sums of the global batch (so
    a batch Dice of 2 x 4 images is that of the 8 one process would see).
    """
    hot, scored = dense_target(task, logits, target)
    probs = task.probabilities(logits)
    if scored is not None:
        probs, hot = probs * scored, hot * scored
    dims = (0, 2, 3)
    sums = global_sum(torch.stack([(probs * hot).sum(dims), probs.sum(dims), hot.sum(dims)]))
    return sums[0], sums[1], sums[2]
