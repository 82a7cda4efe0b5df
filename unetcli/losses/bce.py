"""Binary cross-entropy on logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.core.task import Task
from unetcli.losses._targets import dense_target, masked_mean


class BCELoss(nn.Module):
    """Mean binary cross-entropy of each logit against its 0/1 target, over scored pixels.

    Binary: the one logit against the mask; multiclass: every channel
    one-vs-rest against the one-hot mask; multilabel: each plane on its own.
    `pos_weight` multiplies the loss of positive pixels (e.g. the
    background-to-foreground ratio for thin structures).
    """

    def __init__(self, task: Task, pos_weight: float | None = None) -> None:
        super().__init__()
        self.task = task
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        hot, scored = dense_target(self.task, logits, target)
        pos_weight = None
        if self.pos_weight is not None:
            pos_weight = torch.tensor(float(self.pos_weight), device=logits.device)
        # Nothing ignored: torch's own mean (its fused backward), exactly as before ignore_index.
        loss = F.binary_cross_entropy_with_logits(
            logits.float(),
            hot,
            pos_weight=pos_weight,
            reduction="mean" if scored is None else "none",
        )
        return loss if scored is None else masked_mean(loss, scored)
