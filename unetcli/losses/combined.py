"""Weighted sums of losses."""

from __future__ import annotations

import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.losses.bce import BCELoss
from unetcli.losses.dice import SoftDiceLoss


class BCEDiceLoss(nn.Module):
    """bce_weight * BCE + dice_weight * soft Dice loss (the Carvana write-ups' loss)."""

    def __init__(
        self,
        task: Task,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        pos_weight: float | None = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.bce = BCELoss(task, pos_weight)
        self.dice = SoftDiceLoss(task, smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce_weight * self.bce(logits, target) + self.dice_weight * self.dice(
            logits, target
        )
