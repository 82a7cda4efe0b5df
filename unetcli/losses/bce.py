"""Binary cross-entropy on logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.losses._targets import check_shapes


class BCELoss(nn.Module):
    """Mean binary cross-entropy of one logit per pixel against a 0/1 mask."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_shapes(logits, target)
        if logits.shape[1] != 1:
            raise ValueError(
                f"loss=bce needs one output channel, the model gives {logits.shape[1]}; "
                "use a multi-class loss or dataset.num_classes=1"
            )
        return F.binary_cross_entropy_with_logits(logits[:, 0].float(), (target > 0).float())
