"""The threshold sweep: mean per-image Dice at each threshold, and its best.

Binary tasks sweep their one probability; multilabel tasks apply each
threshold to every plane at once (an image's Dice at a threshold is the mean
over its planes, as in the metrics), so one best threshold serves them all.

`unet evaluate` writes the best threshold to `threshold.json` in its run
folder (unetcli.inference.threshold_file); `predict.threshold_from=<that folder or file>`
uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unetcli.errors import UnetError
from unetcli.postprocessing.labels import fill_holes, remove_small_objects


def threshold_counts(
    prob: np.ndarray,
    truth: np.ndarray,
    thresholds: Sequence[float],
    min_size: int = 0,
    valid: np.ndarray | None = None,
    holes: bool = False,
) -> np.ndarray:
    """(T, 3) true positives, false positives, false negatives of one mask per threshold.

    `prob` (H, W) is the foreground probability, `truth` (H, W) 1 on the object;
    pixels outside `valid` (the task's ignored ones) are not counted. Small objects are
    removed and (`holes`) holes filled at each threshold, as predict does.
    """
    fg = truth == 1
    scored = np.ones(fg.shape, bool) if valid is None else valid
    out = np.zeros((len(thresholds), 3), dtype=np.int64)
    if min_size > 1 or holes:
        for i, t in enumerate(thresholds):
            labels = remove_small_objects((prob > t).astype(np.uint8), min_size)
            pred = ((fill_holes(labels) if holes else labels) > 0) & scored
            tp = int(np.count_nonzero(pred & fg))
            out[i] = (tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(fg)) - tp)
        return out
    inside, outside = prob[fg], prob[~fg & scored]  # compare each half once per threshold
    for i, t in enumerate(thresholds):
        tp = int(np.count_nonzero(inside > t))
        out[i] = (tp, int(np.count_nonzero(outside > t)), inside.size - tp)
    return out


def dice_iou(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-threshold Dice and IoU from (T, 3) counts; 1 where nothing was there or found."""
    tp, fp, fn = counts[:, 0].astype(float), counts[:, 1].astype(float), counts[:, 2].astype(float)
    empty = (tp + fp + fn) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(empty, 1.0, 2 * tp / (2 * tp + fp + fn))
        iou = np.where(empty, 1.0, tp / (tp + fp + fn))
    return dice, iou


class ThresholdTotals:
    """Sums of per-image Dice and IoU per threshold, over the images seen so far.

    `add` takes one image's counts (P, T, 3), one row per plane (one for a
    binary task); the image's Dice is the mean over its planes.
    """

    def __init__(self, thresholds: Sequence[float]) -> None:
        self.thresholds = [float(t) for t in thresholds]
        self.dice = np.zeros(len(self.thresholds))
        self.iou = np.zeros(len(self.thresholds))
        self.images = 0

    def add(self, counts: np.ndarray) -> None:
        scores = [dice_iou(plane) for plane in counts]
        self.dice += np.mean([dice for dice, _ in scores], axis=0)
        self.iou += np.mean([iou for _, iou in scores], axis=0)
        self.images += 1

    def rows(self) -> list[dict[str, float]]:
        n = max(self.images, 1)
        return [
            {"threshold": t, "dice": d / n, "iou": j / n}
            for t, d, j in zip(self.thresholds, self.dice, self.iou)
        ]

    def best(self) -> dict[str, float]:
        """The threshold with the highest mean Dice (the one nearest 0.5 among ties)."""
        rows = self.rows()
        top = max(r["dice"] for r in rows)
        tied = [r for r in rows if r["dice"] >= top - 1e-12]
        return min(tied, key=lambda r: abs(r["threshold"] - 0.5))


def check_thresholds(values: Sequence[float], key: str) -> list[float]:
    thresholds = [float(v) for v in values or []]
    if any(not 0 < t < 1 for t in thresholds):
        raise UnetError(f"{key} must hold thresholds strictly between 0 and 1, got {thresholds}")
    return sorted(set(thresholds))
