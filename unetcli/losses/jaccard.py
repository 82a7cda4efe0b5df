"""Soft Jaccard (IoU) loss."""

from __future__ import annotations

import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.losses._targets import soft_overlap


class SoftJaccardLoss(nn.Module):
    """1 - soft IoU, |P*T| / (|P| + |T| - |P*T|) over the batch per channel, mean over channels.

    The same conventions as SoftDiceLoss: sigmoid for binary and multilabel
    tasks, softmax (background included) for multiclass ones; `smooth` keeps
    empty masks defined.
    """

    def __init__(self, task: Task, smooth: float = 1.0) -> None:
        super().__init__()
        self.task = task
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        intersection, prob_sum, target_sum = soft_overlap(self.task, logits, target)
        union = prob_sum + target_sum - intersection
        return 1 - ((intersection + self.smooth) / (union + self.smooth)).mean()
