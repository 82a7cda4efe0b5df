"""Per-image pictures on request: mask PNGs, 8-bit probability maps, overlays.

File names number classes as people do (see unetcli.core.task): a binary task
writes `<stem>.png`; a multiclass task one class-index PNG `<stem>.png` and
probabilities `<stem>_class<k>.png` for k = 1..C-1; a multilabel task one
0/255 mask `<stem>_<k>.png` and probability `<stem>_class<k>.png` per class
k = 1..C (the same `_<k>` as its submission rows).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetcli.core.files import atomic_write_bytes
from unetcli.core.task import Task


def write_png(path: Path, array: np.ndarray) -> None:
    """Write a PNG (RGB arrays are given in RGB order); fast compression, large files are normal."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    # Encoded in memory, written under a temporary name and renamed: a full disk leaves no
    # half-written PNG under the final name.
    atomic_write_bytes(path, encoded.tobytes(), "image")


def mask_images(labels: np.ndarray, task: Task) -> list[tuple[str, np.ndarray]]:
    """(suffix, image) per mask file: binary 0/255, class maps as indices, planes 0/255 each."""
    if task.multilabel:
        return [(f"_{p + 1}", plane * np.uint8(255)) for p, plane in enumerate(labels)]
    return [("", labels * np.uint8(255) if task.kind == "binary" else labels)]


def probability_images(probs: np.ndarray, task: Task) -> list[tuple[str, np.ndarray]]:
    """(suffix, uint8 map) per foreground class: '' for binary, '_class<k>' for class k."""
    scaled = np.clip(np.rint(probs * 255), 0, 255).astype(np.uint8)
    if task.kind == "binary":
        return [("", scaled[0])]
    return [(f"_class{task.class_number(c)}", scaled[c]) for c in task.foreground]
