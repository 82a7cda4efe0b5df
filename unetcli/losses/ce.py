"""Cross-entropy over classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.losses._targets import class_indices, log_probabilities


class CrossEntropyLoss(nn.Module):
    """Mean -log p(true class) per pixel: softmax over C channels, sigmoid for one.

    One channel is read as two classes (background, foreground), so the same
    loss serves binary and multi-class models. `class_weights` (one per class,
    background first) weighs each pixel by its true class, normalised as
    torch's cross_entropy does (divided by the sum of the weights used).
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.class_weights = list(class_weights) if class_weights is not None else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = class_indices(logits, target)
        log_p = log_probabilities(logits)
        weight = None
        if self.class_weights is not None:
            if len(self.class_weights) != log_p.shape[1]:
                raise ValueError(
                    f"loss.class_weights has {len(self.class_weights)} values but the task has "
                    f"{log_p.shape[1]} classes (background first)"
                )
            weight = torch.tensor(self.class_weights, dtype=torch.float32, device=logits.device)
        return F.nll_loss(log_p, labels, weight=weight)
