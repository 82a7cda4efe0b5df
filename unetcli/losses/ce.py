"""Cross-entropy over classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses._targets import class_labels, log_probabilities, masked_mean, refuse_unless


def class_weight_table(
    task: Task, class_weights: Sequence[float] | None, key: str
) -> list[float] | None:
    """One weight per label (background first), checked against the task at construction."""
    if class_weights is None:
        return None
    weights = [float(w) for w in class_weights]
    if len(weights) != task.label_count:
        raise UnetError(
            f"{key} has {len(weights)} values but this {task.kind} task has "
            f"{task.label_count} classes (background first); give {task.label_count} values "
            "or null"
        )
    return weights


class CrossEntropyLoss(nn.Module):
    """Mean -log p(true class) per scored pixel: softmax over classes, sigmoid for binary.

    A binary task is read as two classes (background, foreground), so the
    same loss serves binary and multiclass tasks; multilabel tasks have no
    single true class per pixel and are refused. `class_weights` (one per
    class, background first) weighs each pixel by its true class, normalised
    as torch's cross_entropy does (divided by the sum of the weights used).
    """

    def __init__(self, task: Task, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        refuse_unless(
            task, "ce", ("binary", "multiclass"), "cross-entropy needs one class per pixel"
        )
        self.task = task
        self.class_weights = class_weight_table(task, class_weights, "loss.class_weights")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels, scored = class_labels(self.task, logits, target)
        nll = -log_probabilities(self.task, logits).gather(1, labels.unsqueeze(1)).squeeze(1)
        weight = scored
        if self.class_weights is not None:
            table = torch.tensor(self.class_weights, dtype=torch.float32, device=logits.device)
            weight = table[labels] if scored is None else table[labels] * scored
        return masked_mean(nll, weight)
