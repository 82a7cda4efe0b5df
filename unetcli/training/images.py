"""Picture grids for TensorBoard: input | truth | prediction, one row per image."""

from __future__ import annotations

import numpy as np
import torch


def colourise(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Class maps (N, H, W) to RGB float images in [0, 1] (binary: white on black)."""
    levels = max(num_classes - 1, 1)
    grey = labels.float().clamp(0, levels) / levels
    return grey.unsqueeze(-1).expand(*grey.shape, 3).cpu().numpy()


def denormalise(images: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """Normalised inputs (N, C, H, W) back to RGB in [0, 1], (N, H, W, 3)."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    out = (images.float().cpu() * s + m).clamp(0, 1).permute(0, 2, 3, 1)
    if out.shape[-1] == 1:
        out = out.expand(*out.shape[:-1], 3)
    return out.numpy()


def comparison_grid(
    images: torch.Tensor,
    truth: torch.Tensor,
    pred: torch.Tensor,
    mean: list[float],
    std: list[float],
    num_classes: int,
) -> np.ndarray:
    """An (H*N, W*3, 3) float image with one row per sample: input | truth | prediction."""
    cols = [
        denormalise(images, mean, std),
        colourise(truth, num_classes),
        colourise(pred, num_classes),
    ]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(images.shape[0])]
    return np.concatenate(rows, axis=0)
