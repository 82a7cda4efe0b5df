"""Per-image pictures on request: mask PNGs, 8-bit probability maps, outline overlays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Outline colours (RGB): prediction per class, and the truth.
PALETTE = np.array(
    [
        [0, 0, 0],
        [0, 255, 0],
        [255, 200, 0],
        [0, 200, 255],
        [255, 0, 255],
        [255, 128, 0],
        [128, 255, 128],
        [0, 128, 255],
    ],
    dtype=np.uint8,
)
TRUTH_COLOUR = (255, 0, 0)


def class_colour(label: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in PALETTE[1 + (label - 1) % (len(PALETTE) - 1)])


def write_png(path: Path, array: np.ndarray) -> None:
    """Write a PNG (RGB arrays are given in RGB order); fast compression, large files are normal."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"cannot write {path}")


def mask_image(labels: np.ndarray, num_channels: int) -> np.ndarray:
    """Binary masks as 0/255 (visible), class maps as their indices."""
    return labels * np.uint8(255) if num_channels == 1 else labels


def probability_images(probs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(suffix, uint8 map) per foreground class: '' for binary, '_class<k>' for class k."""
    scaled = np.clip(np.rint(probs * 255), 0, 255).astype(np.uint8)
    if probs.shape[0] == 1:
        return [("", scaled[0])]
    return [(f"_class{k}", scaled[k]) for k in range(1, probs.shape[0])]


def outline_thickness(height: int, width: int) -> int:
    return max(1, round(min(height, width) / 400))


def draw_outlines(
    canvas: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int] | None, thickness: int
) -> None:
    """Draw the outline of each class region of `labels` on `canvas` (in place)."""
    for value in np.unique(labels):
        if value == 0:
            continue
        binary = (labels == value).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colour or class_colour(int(value)), thickness)


def overlay(image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """The image (RGB) with the predicted outline (green, or a colour per class) and, when
    known, the true outline (red), drawn over it."""
    canvas = image.copy() if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    thickness = outline_thickness(*canvas.shape[:2])
    if truth is not None:
        draw_outlines(canvas, truth, TRUTH_COLOUR, thickness)
    draw_outlines(canvas, pred, None, thickness)
    return canvas
