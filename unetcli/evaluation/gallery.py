"""The gallery of the worst images: image | truth | prediction | error map, one row each.

Truth and prediction are drawn in the class colours of unetcli.core.drawing; the
error map has its own colours, which mean hit, false positive, missed and
wrong class rather than classes. Label maps are (H, W); multilabel planes
(C, H, W), where "wrong class" means both sides found something but not the
same set of classes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from unetcli.core.drawing import IGNORED, colour_labels
from unetcli.core.images import to_picture
from unetcli.core.task import Task
from unetcli.evaluation.plots import text, text_width

THUMB_SIDE = 256  # longest side kept of each image, in pixels
MIN_PANEL_SIDE = 128  # smaller images are shown enlarged
# Error map colours (RGB).
CORRECT_FG = (255, 255, 255)
FALSE_POSITIVE = (230, 40, 40)
FALSE_NEGATIVE = (40, 120, 255)
WRONG_CLASS = (255, 170, 0)


def thumbnail(array: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """A label map (H, W) or planes (C, H, W) shrunk (nearest) so its longest side is <= side."""
    h, w = array.shape[-2:]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return array.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if array.ndim == 3:
        return np.stack([cv2.resize(p, size, interpolation=cv2.INTER_NEAREST) for p in array])
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST)


def error_map(pred: np.ndarray, truth: np.ndarray, task: Task) -> np.ndarray:
    """Black: correct background; white: correct object; red: false positive; blue: missed;
    orange: the wrong object class; grey: ignored (the task's ignore_index)."""
    valid = task.valid_np(truth)
    if task.multilabel:
        valid = valid.all(0)
        found, there = pred.any(0), (truth == 1).any(0)
        same = (pred == truth).all(0)
    else:
        found, there, same = pred > 0, truth > 0, pred == truth
    out = np.zeros((*valid.shape, 3), np.uint8)
    out[same & there] = CORRECT_FG
    out[found & ~there] = FALSE_POSITIVE
    out[~found & there] = FALSE_NEGATIVE
    out[found & there & ~same] = WRONG_CLASS
    out[~valid] = IGNORED
    return out


@dataclass(order=True)
class _Entry:
    key: tuple[float, int]  # (-dice, -index): the heap's top is the best of the kept worst
    index: int = field(compare=False)
    name: str = field(compare=False)
    dice: float = field(compare=False)
    pred: np.ndarray = field(compare=False)
    truth: np.ndarray = field(compare=False)


class WorstImages:
    """Keeps thumbnails of the `n` lowest-Dice images seen (memory bounded by n)."""

    def __init__(self, n: int) -> None:
        self.n = max(0, int(n))
        self._heap: list[_Entry] = []

    def wants(self, dice: float) -> bool:
        return self.n > 0 and (len(self._heap) < self.n or dice < self._heap[0].dice)

    def add(self, index: int, name: str, dice: float, pred: np.ndarray, truth: np.ndarray) -> None:
        if not self.wants(dice):
            return
        entry = _Entry((-dice, -index), index, name, dice, pred, truth)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heapreplace(self._heap, entry)

    def entries(self) -> list[_Entry]:
        """Worst first (then by input order)."""
        return sorted(self._heap, key=lambda e: (e.dice, e.index))


def render_gallery(
    worst: WorstImages,
    task: Task,
    read_image: Callable[[int, str], np.ndarray | None] | None,
) -> np.ndarray | None:
    """An RGB uint8 picture, one row per kept image, worst first; None if there are none.

    `read_image(index, name)` gives an image's pixels for the first column
    (None or a None result: that column is left grey).
    """
    entries = worst.entries()
    if not entries:
        return None
    titles = (["image"] if read_image else []) + ["truth", "prediction", "error"]
    rows = []
    for e in entries:
        # Small images are enlarged (nearest) so each panel is at least MIN_PANEL_SIDE high.
        height, width = e.pred.shape[-2:]
        zoom = max(1, -(-MIN_PANEL_SIDE // height))
        size = (width * zoom, height * zoom)
        panels = []
        if read_image is not None:
            image = read_image(e.index, e.name)
            if image is None:
                image = np.full((height, width, 3), 128, np.uint8)
            image = to_picture(image)  # 16-bit, float or N-channel images as 8-bit RGB
            panels.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        panels += [
            colour_labels(e.truth, task.ignore_index),
            colour_labels(e.pred),
            error_map(e.pred, e.truth, task),
        ]
        panels = [
            p if p.shape[1::-1] == size else cv2.resize(p, size, interpolation=cv2.INTER_NEAREST)
            for p in panels
        ]
        gap = np.full((size[1], 4, 3), 128, np.uint8)
        body = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
        head = np.full((24, body.shape[1], 3), 255, np.uint8)
        text(head, f"{e.name}   Dice {e.dice:.4f}", (4, 17))
        rows.append(np.concatenate([head, body], axis=0))
    several = len(task.foreground) > 1
    legend = [
        " | ".join(titles),
        "error map: white hit, red false positive, blue missed"
        + (", orange wrong class" if several else "")
        + (", grey ignored" if task.ignore_index is not None else ""),
    ]
    width = max(max(r.shape[1] for r in rows), *(text_width(line) + 8 for line in legend))
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    header = np.full((22 * len(legend) + 6, width, 3), 255, np.uint8)
    for i, line in enumerate(legend):
        text(header, line, (4, 19 + 22 * i))
    return np.concatenate([header, *rows], axis=0)
