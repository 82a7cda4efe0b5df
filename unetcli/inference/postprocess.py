"""From probabilities to a label map: threshold or argmax, then drop small specks."""

from __future__ import annotations

import cv2
import numpy as np


def labels_from_probabilities(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Class index per pixel (H, W) uint8: probability > threshold for one channel, argmax else."""
    if probs.shape[0] == 1:
        return (probs[0] > threshold).astype(np.uint8)
    return probs.argmax(0).astype(np.uint8)


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set connected components (8-connected) smaller than `min_size` pixels to background.

    Each non-background class is treated on its own, so a small region of one
    class inside another is removed too (it becomes background, class 0).
    """
    if min_size <= 1:
        return labels
    out = labels.copy()
    for value in np.unique(labels):
        if value == 0:
            continue
        binary = (labels == value).astype(np.uint8)
        _, components, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] < min_size
        small[0] = False  # component 0 is everything outside this class
        if small.any():
            out[small[components]] = 0
    return out


def postprocess(probs: np.ndarray, threshold: float, min_size: int) -> np.ndarray:
    """Labels (H, W) from probabilities (C, H, W): threshold/argmax, then the size filter."""
    return remove_small_objects(labels_from_probabilities(probs, threshold), min_size)
