"""Focal loss (Lin et al. 2017): cross-entropy that fades on pixels already right."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses._targets import class_labels, dense_target, log_probabilities, masked_mean

Alpha = float | Sequence[float] | None


def alpha_table(task: Task, alpha: Alpha) -> list[float] | None:
    """Per-label weights (multiclass), or per-channel foreground weights (binary, multilabel).

    Checked once at construction so that a wrong length names `loss.alpha`
    before training starts.
    """
    if alpha is None:
        return None
    if isinstance(alpha, int | float):
        if task.kind == "multiclass":
            raise UnetError(
                f"loss.alpha is one number, which suits binary and multilabel tasks; this "
                f"multiclass task needs one weight per class ({task.num_classes} values)"
            )
        return [float(alpha)] * task.num_classes
    weights = [float(a) for a in alpha]
    if task.kind == "binary" and len(weights) == 2:
        return weights[1:]  # [background, foreground]: the foreground weight, as one number
    if len(weights) != task.num_classes:
        what = "class" if task.kind == "multiclass" else "class plane (its foreground weight)"
        raise UnetError(
            f"loss.alpha has {len(weights)} values; this {task.kind} task needs one number or "
            f"one per {what}: {task.num_classes} values"
        )
    return weights


class FocalLoss(nn.Module):
    """mean of -alpha_t * (1 - p_t)^gamma * log p_t, p_t the probability of the true label.

    gamma = 0 and alpha = None give plain cross-entropy. Binary and multilabel
    tasks apply it to each sigmoid output: `alpha` weighs the foreground and
    1 - alpha the background (0.25 in the paper), one number or one per
    plane. Multiclass tasks use the softmax and one `alpha` weight per class,
    background first.
    """

    def __init__(self, task: Task, gamma: float = 2.0, alpha: Alpha = None) -> None:
        super().__init__()
        if gamma < 0:
            raise UnetError(f"loss.gamma must be >= 0, got {gamma}")
        self.task = task
        self.gamma = float(gamma)
        self.alpha = alpha_table(task, alpha)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.task.kind == "multiclass":
            return self._softmax(logits, target)
        hot, scored = dense_target(self.task, logits, target)
        logits = logits.float()
        log_pt = torch.where(hot > 0, F.logsigmoid(logits), F.logsigmoid(-logits))
        loss = -((1 - log_pt.exp()) ** self.gamma) * log_pt
        if self.alpha is not None:
            fg = torch.tensor(self.alpha, dtype=torch.float32, device=logits.device)
            fg = fg.view(1, -1, 1, 1)
            loss = torch.where(hot > 0, fg, 1 - fg) * loss
        return masked_mean(loss, scored)

    def _softmax(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels, scored = class_labels(self.task, logits, target)
        log_pt = log_probabilities(self.task, logits).gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_pt.exp()) ** self.gamma) * log_pt
        if self.alpha is not None:
            table = torch.tensor(self.alpha, dtype=torch.float32, device=logits.device)
            loss = table[labels] * loss
        return masked_mean(loss, scored)
