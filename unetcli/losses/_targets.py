"""Shared shape handling: masks of class indices versus the model's logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"loss expects logits (N, C, H, W) and a mask (N, H, W) of the same size, "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )


def probabilities_and_onehot(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and a one-hot target of the same (N, C, H, W) shape, in float32."""
    check_shapes(logits, target)
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits), (target > 0).unsqueeze(1).float()
    onehot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).float()
    return torch.softmax(logits, dim=1), onehot
