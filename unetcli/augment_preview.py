"""A picture of what the augmentation does: images with their masks drawn on, before and after.

The write-ups look at augmented samples by eye before training; a mask that
no longer sits on its object, or a colour shift that makes the object vanish,
is obvious in such a grid and invisible in a loss curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np

from unetcli.datasets.base import Layout, Sample

#: Overlay colours (RGB) of classes 1, 2, ...; class 0 (background) is left uncoloured.
PALETTE = [
    (255, 40, 40),
    (40, 120, 255),
    (40, 220, 60),
    (255, 200, 0),
    (200, 60, 255),
    (0, 220, 220),
    (255, 120, 0),
    (150, 150, 150),
]


def denormalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised (H, W, C) float image back to uint8 RGB (grey images become three channels)."""
    out = image * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    out = np.clip(out * 255, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return out


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The uint8 RGB image with each foreground class tinted and outlined in its colour."""
    out = image.astype(np.float32)
    outlines = []
    for value in np.unique(mask):
        if value == 0:
            continue
        colour = np.asarray(PALETTE[(int(value) - 1) % len(PALETTE)], np.float32)
        region = mask == value
        out[region] = (1 - alpha) * out[region] + alpha * colour
        contours, _ = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        outlines.append((contours, tuple(int(c) for c in colour)))
    out = np.clip(out, 0, 255).astype(np.uint8)
    for contours, colour in outlines:
        cv2.drawContours(out, contours, -1, colour, 1)
    return out


def _cell(picture: np.ndarray, height: int, width: int, label: str) -> np.ndarray:
    """The picture centred on a dark cell of (height, width), with a label in the corner."""
    cell = np.full((height, width, 3), 32, np.uint8)
    top = (height - picture.shape[0]) // 2
    left = (width - picture.shape[1]) // 2
    cell[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    scale = max(min(height, width) / 300, 0.3)
    cv2.putText(
        cell,
        label,
        (3, int(14 * scale) + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45 * scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return cell


def preview_grid(
    layout: Layout,
    samples: Sequence[Sample],
    train_transform: A.Compose,
    val_transform: A.Compose,
    mean: Sequence[float],
    std: Sequence[float],
    variants: int = 4,
    alpha: float = 0.4,
) -> np.ndarray:
    """An RGB uint8 grid: one row per sample, its un-augmented view then `variants` augmented ones.

    Each picture is what the model receives (after resize, crop and
    augmentation, before normalisation) with the mask it is trained against
    drawn on top. Pictures of different sizes (crops) are centred in equal cells.
    """
    rows: list[list[tuple[np.ndarray, str]]] = []
    for sample in samples:
        image = layout.read_image(sample.image)
        mask = layout.read_mask(sample.mask)
        row = []
        for k in range(variants + 1):
            transform = val_transform if k == 0 else train_transform
            out = transform(image=image, mask=mask)
            picture = overlay(denormalise(out["image"], mean, std), out["mask"], alpha)
            row.append((picture, "original" if k == 0 else f"augmented {k}"))
        rows.append(row)
    height = max(p.shape[0] for row in rows for p, _ in row)
    width = max(p.shape[1] for row in rows for p, _ in row)
    gap = 4
    lines = []
    for row in rows:
        cells = [_cell(p, height, width, label) for p, label in row]
        spaced = [c for cell in cells for c in (cell, np.zeros((height, gap, 3), np.uint8))]
        lines.append(np.concatenate(spaced[:-1], axis=1))
        lines.append(np.zeros((gap, lines[-1].shape[1], 3), np.uint8))
    return np.concatenate(lines[:-1], axis=0)
