"""From probabilities to labels: the task's threshold or argmax, then drop specks, fill holes."""

from __future__ import annotations

import cv2
import numpy as np

from unetcli.core.task import Task


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


def _fill_region_holes(labels: np.ndarray) -> np.ndarray:
    """One (H, W) label map with each class's enclosed background filled with that class."""
    out = labels.copy()
    for value in np.unique(labels):
        if value == 0:
            continue
        outside = (labels != value).astype(np.uint8)
        # 4-connected background, so a diagonal gap in an 8-connected outline still encloses.
        count, components = cv2.connectedComponents(outside, connectivity=4)
        border = np.unique(
            np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])
        )
        enclosed = np.ones(count, dtype=bool)
        enclosed[border] = False
        enclosed[0] = False  # component 0 is the class itself
        hole = enclosed[components] & (labels == 0)
        out[hole] = value
    return out


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border and are enclosed by one class.

    Objects such as cars or organs have no holes, so a hole is a miss. Only background (0)
    is filled: an island of another class inside an object stays. Multilabel (C, H, W)
    planes are filled each on its own.
    """
    if labels.ndim == 3:
        return np.stack([_fill_region_holes(plane) for plane in labels])
    return _fill_region_holes(labels)


def postprocess(
    probs: np.ndarray, task: Task, threshold: float, min_size: int, holes: bool = False
) -> np.ndarray:
    """Labels from probabilities (C, H, W): the task's (H, W) map or (C, H, W) planes, uint8.

    Binary and multilabel tasks threshold each probability, multiclass ones
    take the argmax; then the size filter, then (`holes`) hole filling, so that a speck
    removed inside an object is filled too.
    """
    labels = remove_small_objects(task.labels_np(probs, threshold), min_size)
    return fill_holes(labels) if holes else labels
