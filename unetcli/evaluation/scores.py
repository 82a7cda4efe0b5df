"""Per-image scores at the original resolution, from one confusion matrix per image.

The definitions are those of `unetcli.metrics` (training's validation): Dice,
IoU, precision and recall per foreground class, a class absent from both
prediction and truth scoring 1 (how Carvana scores empty masks), and pixel
accuracy; an image's metric is the mean over its foreground classes. Here
they are computed in NumPy from a label-by-label pixel count, which also
gives the per-class columns and the dataset's confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unetcli.errors import UnetError
from unetcli.metrics import METRIC_NAMES

CLASS_METRICS = ("dice", "iou", "precision", "recall")


def label_count(num_classes: int) -> int:
    """Labels a prediction can take: 2 for a binary model (one logit), else the classes."""
    return 2 if num_classes == 1 else num_classes


def foreground_classes(num_classes: int) -> list[int]:
    """The classes whose scores are averaged (as unetcli.metrics does)."""
    return [1] if num_classes <= 2 else list(range(1, num_classes))


def confusion(pred: np.ndarray, truth: np.ndarray, labels: int, name: str = "") -> np.ndarray:
    """Pixel counts (labels, labels): rows are the true class, columns the predicted one."""
    if pred.shape != truth.shape:
        raise UnetError(
            f"prediction and true mask of {name or 'an image'} differ in size: "
            f"{pred.shape} vs {truth.shape}"
        )
    top = int(truth.max()) if truth.size else 0
    if top >= labels:
        raise UnetError(
            f"the true mask of {name or 'an image'} holds class {top}, but the model predicts "
            f"{labels} labels (dataset.num_classes); check the mask or the dataset config"
        )
    flat = truth.reshape(-1).astype(np.intp) * labels + pred.reshape(-1)
    return np.bincount(flat, minlength=labels * labels).reshape(labels, labels)


def _ratio(num: float, den: float, empty: bool) -> float:
    return num / den if den > 0 else float(empty)


@dataclass
class ImageScores:
    """One image's metrics (means over foreground classes) and per-class values."""

    metrics: dict[str, float]
    per_class: dict[int, dict[str, float]]


def scores_from_confusion(cm: np.ndarray, num_classes: int) -> ImageScores:
    total = cm.sum()
    per_class: dict[int, dict[str, float]] = {}
    for c in foreground_classes(num_classes):
        tp = float(cm[c, c])
        fp = float(cm[:, c].sum() - tp)
        fn = float(cm[c, :].sum() - tp)
        empty = tp + fp + fn == 0
        per_class[c] = {
            "dice": _ratio(2 * tp, 2 * tp + fp + fn, empty),
            "iou": _ratio(tp, tp + fp + fn, empty),
            "precision": _ratio(tp, tp + fp, empty),
            "recall": _ratio(tp, tp + fn, empty),
        }
    metrics = {
        name: float(np.mean([v[name] for v in per_class.values()])) for name in CLASS_METRICS
    }
    metrics["accuracy"] = float(np.trace(cm) / total) if total else 1.0
    return ImageScores({name: metrics[name] for name in METRIC_NAMES}, per_class)


def image_scores(
    pred: np.ndarray, truth: np.ndarray, num_classes: int, name: str = ""
) -> tuple[ImageScores, np.ndarray]:
    """(scores, confusion matrix) of one image's label maps (H, W)."""
    if num_classes == 1:
        truth = (truth > 0).astype(np.uint8)
    cm = confusion(pred, truth, label_count(num_classes), name)
    return scores_from_confusion(cm, num_classes), cm
