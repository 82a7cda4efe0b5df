"""Binary cross-entropy on logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.losses._targets import onehot


class BCELoss(nn.Module):
    """Mean binary cross-entropy of each logit against the 0/1 mask.

    With C > 1 channels every channel is a one-vs-rest binary task against
    the one-hot mask. `pos_weight` multiplies the loss of positive pixels
    (e.g. the background-to-foreground ratio for thin structures).
    """

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        hot = onehot(logits, target)
        pos_weight = None
        if self.pos_weight is not None:
            pos_weight = torch.tensor(float(self.pos_weight), device=logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), hot, pos_weight=pos_weight)
