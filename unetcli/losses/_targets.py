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


def onehot(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target as float (N, C, H, W): the 0/1 mask for one channel, one-hot otherwise."""
    check_shapes(logits, target)
    if logits.shape[1] == 1:
        return (target > 0).unsqueeze(1).float()
    if target.min() < 0 or target.max() >= logits.shape[1]:
        raise ValueError(
            f"mask values must be class indices 0..{logits.shape[1] - 1} for a model with "
            f"{logits.shape[1]} outputs, found {int(target.min())}..{int(target.max())}; "
            "check dataset.num_classes"
        )
    return F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).float()


def probabilities_and_onehot(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and a one-hot target of the same (N, C, H, W) shape, in float32."""
    hot = onehot(logits, target)
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits), hot
    return torch.softmax(logits, dim=1), hot


def log_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """log p per class (N, C, H, W); one channel becomes two: log(1 - p), log(p)."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=1)
    return F.log_softmax(logits, dim=1)


def class_indices(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target as long class indices; 0/1 for a one-channel (binary) model."""
    check_shapes(logits, target)
    return (target > 0).long() if logits.shape[1] == 1 else target.long()


def soft_overlap(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class sums over the batch: (|P*T|, |P|, |T|), the terms of soft Dice and soft IoU."""
    probs, onehot = probabilities_and_onehot(logits, target)
    dims = (0, 2, 3)
    return (probs * onehot).sum(dims), probs.sum(dims), onehot.sum(dims)
