"""Model outputs as probabilities at each image's original size."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from unetcli.hardware import Runtime


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, images: torch.Tensor, runtime: Runtime
) -> torch.Tensor:
    """Per-class probabilities (N, C, H, W) in float32 on the CPU (sigmoid if C == 1)."""
    with runtime.autocast():
        logits = model(runtime.to_input(images))
    logits = logits.float()
    probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
    return probs.cpu()


def to_original_size(probs: torch.Tensor, height: int, width: int) -> np.ndarray:
    """One image's probabilities (C, h, w) resized (bilinear) to (C, height, width)."""
    array = probs.numpy()
    if array.shape[1:] == (height, width):
        return array
    return np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR) for c in array])


def labels_from_probabilities(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Class index per pixel (H, W): probability > threshold for one channel, argmax otherwise."""
    if probs.shape[0] == 1:
        return (probs[0] > threshold).astype(np.uint8)
    return probs.argmax(0).astype(np.uint8)
