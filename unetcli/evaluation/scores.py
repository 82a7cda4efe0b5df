"""Per-image scores at the original resolution, from pixel counts per image.

The definitions are those of `unetcli.metrics` (training's validation): Dice,
IoU, precision and recall per foreground class, a class absent from both
prediction and truth scoring 1 (how Carvana scores empty masks), and pixel
accuracy; an image's metric is the mean over its foreground classes, and
pixels whose truth is the task's ignore_index count nowhere. Here they are
computed in NumPy from pixel counts, which also give the per-class columns
and the dataset's totals:

- binary and multiclass: one label-by-label confusion matrix (L, L) per image
  (rows: truth, columns: prediction);
- multilabel: one 2x2 confusion matrix per plane, (C, 2, 2): each class is
  its own binary mask, and classes may overlap, so there is no matrix across
  classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.metrics import METRIC_NAMES

CLASS_METRICS = ("dice", "iou", "precision", "recall")


def confusion(
    pred: np.ndarray, truth: np.ndarray, labels: int, valid: np.ndarray, name: str = ""
) -> np.ndarray:
    """Pixel counts (labels, labels) over the scored pixels: rows truth, columns prediction."""
    truth, pred = truth[valid], pred[valid]
    top = int(truth.max()) if truth.size else 0
    if top >= labels:
        raise UnetError(
            f"the true mask of {name or 'an image'} holds value {top}, but the task has "
            f"{labels} labels (dataset.num_classes, dataset.task; dataset.ignore_index for "
            "pixels to leave out); check the mask or the dataset config"
        )
    flat = truth.astype(np.intp) * labels + pred.astype(np.intp)
    return np.bincount(flat, minlength=labels * labels).reshape(labels, labels)


def _ratio(num: float, den: float, empty: bool) -> float:
    return num / den if den > 0 else float(empty)


@dataclass
class ImageScores:
    """One image's metrics (means over foreground classes) and per-class values."""

    metrics: dict[str, float]
    per_class: dict[int, dict[str, float]]


def class_scores(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Dice, IoU, precision and recall of one class from its pixel counts."""
    empty = tp + fp + fn == 0
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, empty),
        "iou": _ratio(tp, tp + fp + fn, empty),
        "precision": _ratio(tp, tp + fp, empty),
        "recall": _ratio(tp, tp + fn, empty),
    }


def _accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 1.0


def scores_from_counts(counts: np.ndarray, task: Task) -> ImageScores:
    """ImageScores from an image's counts (see the module docstring for their shape)."""
    per_class: dict[int, dict[str, float]] = {}
    for c in task.foreground:
        cm = counts[c] if task.multilabel else counts
        k = 1 if task.multilabel else c
        tp = float(cm[k, k])
        per_class[c] = class_scores(tp, float(cm[:, k].sum() - tp), float(cm[k, :].sum() - tp))
    metrics = {
        name: float(np.mean([v[name] for v in per_class.values()])) for name in CLASS_METRICS
    }
    if task.multilabel:
        metrics["accuracy"] = float(np.mean([_accuracy(cm) for cm in counts]))
    else:
        metrics["accuracy"] = _accuracy(counts)
    return ImageScores({name: metrics[name] for name in METRIC_NAMES}, per_class)


def image_counts(pred: np.ndarray, truth: np.ndarray, task: Task, name: str = "") -> np.ndarray:
    """Pixel counts of one image: prediction and truth are (H, W) maps or (C, H, W) planes."""
    if pred.shape != truth.shape:
        raise UnetError(
            f"prediction and true mask of {name or 'an image'} differ in shape: "
            f"{pred.shape} vs {truth.shape} (dataset.task={task.kind}, "
            f"dataset.num_classes={task.num_classes})"
        )
    valid = task.valid_np(truth)
    if task.multilabel:
        return np.stack([confusion(p, t, 2, v, name) for p, t, v in zip(pred, truth, valid)])
    return confusion(pred, truth, task.label_count, valid, name)


def image_scores(
    pred: np.ndarray, truth: np.ndarray, task: Task, name: str = ""
) -> tuple[ImageScores, np.ndarray]:
    """(scores, pixel counts) of one image."""
    counts = image_counts(pred, truth, task, name)
    return scores_from_counts(counts, task), counts
