"""A picture of what the augmentation does: images with their masks drawn on, before and after.

The write-ups look at augmented samples by eye before training; a mask that
no longer sits on its object, or a colour shift that makes the object vanish,
is obvious in such a grid and invisible in a loss curve. Masks are drawn
with unetcli.core.drawing, in the class colours every command uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

from unetcli.core.drawing import denormalise, overlay
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.torch_dataset import transform_pair

GAP = 4  # pixels between cells


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


@dataclass(frozen=True)
class Preview:
    """How to show samples: the two pipelines, the normalisation to undo, and the drawing.

    `val` gives each row's un-augmented view, `train` its `variants`
    augmented ones; `alpha` is the strength of the mask tint.
    """

    train: A.Compose
    val: A.Compose
    mean: Sequence[float]
    std: Sequence[float]
    variants: int = 4
    alpha: float = 0.4
    ignore_index: int | None = None

    def row(self, layout: Layout, sample: Sample) -> list[tuple[np.ndarray, str]]:
        """(picture, label) of the un-augmented view and each augmented one."""
        image = layout.read_image(sample.image)
        mask = layout.read_mask(sample.mask)
        row = []
        for k in range(self.variants + 1):
            transform = self.val if k == 0 else self.train
            out_image, out_mask, _ = transform_pair(transform, image, mask)
            picture = denormalise(out_image, self.mean, self.std)
            drawn = overlay(picture, out_mask, alpha=self.alpha, ignore_index=self.ignore_index)
            row.append((drawn, "original" if k == 0 else f"augmented {k}"))
        return row

    def grid(self, layout: Layout, samples: Sequence[Sample]) -> np.ndarray:
        """An RGB uint8 grid: one row per sample, its un-augmented view then the variants.

        Each picture is what the model receives (after resize, crop and
        augmentation, before normalisation) with the mask it is trained against
        drawn on top. Pictures of different sizes (crops) are centred in equal cells.
        """
        rows = [self.row(layout, sample) for sample in samples]
        height = max(p.shape[0] for row in rows for p, _ in row)
        width = max(p.shape[1] for row in rows for p, _ in row)
        lines = []
        for row in rows:
            cells = [_cell(p, height, width, label) for p, label in row]
            spaced = [c for cell in cells for c in (cell, np.zeros((height, GAP, 3), np.uint8))]
            lines.append(np.concatenate(spaced[:-1], axis=1))
            lines.append(np.zeros((GAP, lines[-1].shape[1], 3), np.uint8))
        return np.concatenate(lines[:-1], axis=0)
