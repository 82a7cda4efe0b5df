"""Focal loss (Lin et al. 2017): cross-entropy that fades on pixels already right."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetcli.losses._targets import class_indices, log_probabilities


class FocalLoss(nn.Module):
    """mean of -alpha_t * (1 - p_t)^gamma * log p_t, p_t the probability of the true class.

    gamma = 0 and alpha = None give plain cross-entropy. For a binary model
    (one channel, sigmoid) `alpha` is the weight of the foreground and
    1 - alpha that of the background (0.25 in the paper); for a multi-class
    model it is a list with one weight per class, background first.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"loss.gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = alpha if alpha is None or isinstance(alpha, float | int) else list(alpha)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = class_indices(logits, target).unsqueeze(1)
        log_pt = log_probabilities(logits).gather(1, labels).squeeze(1)
        loss = -((1 - log_pt.exp()) ** self.gamma) * log_pt
        if self.alpha is not None:
            classes = 2 if logits.shape[1] == 1 else logits.shape[1]
            if isinstance(self.alpha, float | int):
                if classes != 2:
                    raise ValueError(
                        "loss.alpha is one number, which only suits a binary model; give one "
                        f"weight per class ({classes} values) instead"
                    )
                weights = [1 - float(self.alpha), float(self.alpha)]
            else:
                weights = self.alpha
            if len(weights) != classes:
                raise ValueError(f"loss.alpha has {len(weights)} values for {classes} classes")
            table = torch.tensor(weights, dtype=torch.float32, device=logits.device)
            loss = table[labels.squeeze(1)] * loss
        return loss.mean()
