"""Soft Dice loss."""

from __future__ import annotations

import torch
from torch import nn

from unetcli.losses._targets import probabilities_and_onehot


class SoftDiceLoss(nn.Module):
    """1 - soft Dice, computed over the whole batch per class and averaged over classes.

    Summing over the batch (rather than averaging per-image Dice) keeps the loss
    defined for images with no foreground; `smooth` keeps it differentiable there.
    For multi-class tasks the background class (0) is included, as in the
    write-ups.
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs, onehot = probabilities_and_onehot(logits, target)
        dims = (0, 2, 3)
        intersection = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return 1 - dice.mean()
