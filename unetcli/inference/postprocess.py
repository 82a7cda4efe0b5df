"""From probabilities to labels: the task's threshold or argmax, then drop small specks."""

from __future__ import annotations

import cv2
import numpy as np

from unetcli.task import Task


def _remove_small_regions(labels: np.ndarray, min_size: int) -> np.ndarray:
    """One (H, W) label map with components smaller than `min_size` set to 0."""
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


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set connected components (8-connected) smaller than `min_size` pixels to background.

    Each non-background class of a (H, W) map is treated on its own, so a
    small region of one class inside another is removed too (it becomes
    background, class 0); each plane of (C, H, W) multilabel planes on its own.
    """
    if min_size <= 1:
        return labels
    if labels.ndim == 3:
        return np.stack([_remove_small_regions(plane, min_size) for plane in labels])
    return _remove_small_regions(labels, min_size)


def postprocess(probs: np.ndarray, task: Task, threshold: float, min_size: int) -> np.ndarray:
    """Labels from probabilities (C, H, W): the task's (H, W) map or (C, H, W) planes, uint8.

    Binary and multilabel tasks threshold each probability, multiclass ones
    take the argmax; then the size filter.
    """
    return remove_small_objects(task.labels_np(probs, threshold), min_size)
