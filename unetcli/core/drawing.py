"""Every picture of a mask, drawn one way: one colour per class, in every command.

`unet augment`, the TensorBoard grids of `unet train`, the overlays of
`unet predict` and the gallery of `unet evaluate` all draw labels here, so
class k has the same colour everywhere (a binary task's foreground is
class 1; a multilabel task's plane p is class p + 1, see unetcli.core.task).
Label maps are (H, W) class indices; multilabel planes are (C, H, W) 0/1
(where planes overlap, their colours are mixed). Pixels equal to the
task's ignore_index are drawn grey.

On an image, labels are tinted and outlined with a solid line; the truth,
when drawn beside a prediction, is outlined with a dashed line of the same
class colour, so "solid = prediction, dashed = truth" in every overlay.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from unetcli.core.images import to_picture

#: RGB colour of class k at row k; row 0 (background) is never drawn.
PALETTE = np.array(
    [
        [0, 0, 0],
        [0, 230, 0],
        [255, 200, 0],
        [0, 170, 255],
        [255, 0, 255],
        [255, 120, 0],
        [0, 255, 220],
        [160, 110, 255],
        [255, 90, 120],
    ],
    dtype=np.uint8,
)
#: Pixels the task ignores (dataset.ignore_index).
IGNORED = (128, 128, 128)
#: Length in pixels of a dash (and of the gap after it) of a truth outline.
DASH = 6


def class_colour(k: int) -> tuple[int, int, int]:
    """The RGB colour of foreground class k >= 1 (the palette repeats after 8 classes)."""
    return tuple(int(v) for v in PALETTE[1 + (int(k) - 1) % (len(PALETTE) - 1)])


def denormalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised (H, W, C) float image back to uint8 RGB (grey images become three channels).

    Images whose channels mean/std do not describe (N bands, dataset-mode z-scores) are
    stretched from their minimum to their maximum instead, their first three channels shown.
    """
    if image.ndim == 3 and image.shape[-1] not in (1, 3):
        return to_picture(np.asarray(image, np.float32))
    out = np.asarray(image, np.float32) * np.asarray(std, np.float32)
    out = np.clip((out + np.asarray(mean, np.float32)) * 255, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 copy with three channels (grey (H, W) or (H, W, 1) repeated; deeper or
    N-channel images as `to_picture` shows them)."""
    image = image[..., None] if image.ndim == 2 else image
    if image.dtype != np.uint8 or image.shape[-1] not in (1, 3):
        return to_picture(image)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image.copy()


def regions(labels: np.ndarray, ignore_index: int | None = None) -> list[tuple[int, np.ndarray]]:
    """(class number, bool region) of every foreground class present, maps or planes."""
    if labels.ndim == 3:  # multilabel planes: plane p is class p + 1
        return [(p + 1, plane == 1) for p, plane in enumerate(labels) if (plane == 1).any()]
    values = [int(v) for v in np.unique(labels) if v != 0 and v != ignore_index]
    return [(v, labels == v) for v in values]


def ignored(labels: np.ndarray, ignore_index: int | None) -> np.ndarray | None:
    """Where the labels hold ignore_index (any plane), or None."""
    if ignore_index is None:
        return None
    hit = labels == ignore_index
    return hit.any(0) if labels.ndim == 3 else hit


def colour_labels(labels: np.ndarray, ignore_index: int | None = None) -> np.ndarray:
    """Labels (H, W) or planes (C, H, W) as an RGB uint8 picture on black."""
    shape = labels.shape[-2:]
    if labels.ndim == 2:  # exclusive classes: each pixel takes its class's colour
        out = np.zeros((*shape, 3), np.uint8)
        for k, region in regions(labels, ignore_index):
            out[region] = class_colour(k)
    else:  # planes may overlap: the mean of the colours present
        total = np.zeros((*shape, 3), np.float32)
        count = np.zeros(shape, np.float32)
        for k, region in regions(labels, ignore_index):
            total[region] += class_colour(k)
            count[region] += 1
        out = (total / np.maximum(count, 1)[..., None]).round().astype(np.uint8)
    skip = ignored(labels, ignore_index)
    if skip is not None:
        out[skip] = IGNORED
    return out


def outline_thickness(height: int, width: int) -> int:
    """Outline width in pixels: 1, and 1 more per 400 pixels of the shorter side."""
    return max(1, round(min(height, width) / 400))


def _dashes(contour: np.ndarray) -> list[np.ndarray]:
    """Every other run of DASH points along a closed contour (CHAIN_APPROX_NONE points)."""
    points = np.concatenate([contour, contour[:1]])
    return [points[i : i + DASH + 1] for i in range(0, len(points) - 1, 2 * DASH)]


def outline(
    canvas: np.ndarray,
    labels: np.ndarray,
    thickness: int = 1,
    dashed: bool = False,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Draw each class region's outline in its colour on `canvas` (in place; returned)."""
    for k, region in regions(labels, ignore_index):
        contours, _ = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE
        )
        colour = class_colour(k)
        if not dashed:
            cv2.drawContours(canvas, contours, -1, colour, thickness)
            continue
        pieces = [piece for c in contours for piece in _dashes(c)]
        cv2.polylines(canvas, pieces, False, colour, thickness)
    return canvas


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    truth: np.ndarray | None = None,
    alpha: float = 0.4,
    ignore_index: int | None = None,
) -> np.ndarray:
    """The RGB image with `labels` tinted (alpha) and outlined (solid), `truth` dashed.

    Labels and truth are maps (H, W) or planes (C, H, W) of the image's size.
    """
    canvas = as_rgb(image)
    thickness = outline_thickness(*canvas.shape[:2])
    if alpha > 0:
        tint = colour_labels(labels, ignore_index)
        drawn = tint.any(-1)
        mixed = (1 - alpha) * canvas[drawn] + alpha * tint[drawn].astype(np.float32)
        canvas[drawn] = np.clip(mixed.round(), 0, 255).astype(np.uint8)
    if truth is not None:
        outline(canvas, truth, thickness, dashed=True, ignore_index=ignore_index)
    return outline(canvas, labels, thickness, ignore_index=ignore_index)
