"""Soft Dice loss."""

from __future__ import annotations

import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.losses._targets import soft_overlap


class SoftDiceLoss(nn.Module):
    """1 - soft Dice, computed over the whole batch per channel and averaged over channels.

    Summing over the batch (rather than averaging per-image Dice) keeps the loss
    defined for images with no foreground; `smooth` keeps it differentiable there.
    Multiclass tasks include the background class (0), as in the write-ups;
    multilabel tasks average their planes. Ignored pixels count in no sum.
    """

    def __init__(self, task: Task, smooth: float = 1.0) -> None:
        super().__init__()
        self.task = task
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        intersection, prob_sum, target_sum = soft_overlap(self.task, logits, target)
        total = prob_sum + target_sum
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return 1 - dice.mean()
