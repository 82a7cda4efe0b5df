"""Picture grids for TensorBoard: input | truth | prediction, one row per image."""

from __future__ import annotations

import numpy as np
import torch

from unetcli.core.drawing import colour_labels, denormalise
from unetcli.core.task import Task


def comparison_grid(
    images: torch.Tensor,
    truth: torch.Tensor,
    pred: torch.Tensor,
    mean: list[float],
    std: list[float],
    task: Task,
) -> np.ndarray:
    """An (H*N, W*3, 3) uint8 RGB picture, one row per sample: input | truth | prediction.

    Labels are drawn in the class colours of unetcli.core.drawing (the same as in
    `unet augment`, the predict overlays and the evaluate gallery); truth and
    prediction are maps (N, H, W) or multilabel planes (N, C, H, W).
    """
    inputs = images.float().cpu().permute(0, 2, 3, 1).numpy()
    truth, pred = truth.cpu().numpy(), pred.cpu().numpy()
    rows = [
        np.concatenate(
            [
                denormalise(inputs[i], mean, std),
                colour_labels(truth[i], task.ignore_index),
                colour_labels(pred[i]),
            ],
            axis=1,
        )
        for i in range(len(inputs))
    ]
    return np.concatenate(rows, axis=0)
