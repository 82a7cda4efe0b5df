"""Tiny `folder` datasets in each mask encoding users bring, for `unet doctor` and `unet plan`.

Each builder writes images/ and masks/ under `root` and returns `root`: grey
photos with bright objects where the mask marks them, stored the way real
datasets store them (0/1, 0/255, palette PNG, RGB colours, 16 bit, instance
labels, JPEG).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIZE = (32, 40)  # height, width
MULTICLASS = ("palette", "rgb", "indices", "grey-values")
COLOURS = [(0, 0, 0), (200, 30, 30), (30, 200, 30)]


def _labels(rng: np.random.Generator, classes: int, objects: int = 3) -> np.ndarray:
    """Class (or instance) numbers 1..: `objects` separate rectangles, class k % classes + 1."""
    labels = np.zeros(SIZE, np.uint8)
    for k in range(objects):
        top, left = 2 + 10 * (k // 3), 2 + 12 * (k % 3)
        h, w = rng.integers(4, 8, 2)
        labels[top : top + h, left : left + w] = 1 + k % classes if classes else k + 1
    return labels


def _image(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    image = rng.integers(0, 80, (*SIZE, 3)).astype(np.uint8)
    image[labels > 0] += 120
    return image


def build(root: Path, encoding: str, n: int = 10, seed: int = 0) -> Path:
    """A folder dataset of `n` images whose masks use `encoding` (see ENCODINGS)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        classes = 0 if encoding == "instances" else 2 if encoding in MULTICLASS else 1
        labels = _labels(rng, classes, objects=3 + i % 4 if encoding == "instances" else 3)
        image = _image(rng, labels)
        if encoding == "16-bit":  # microscopy: 12-bit values in a 16-bit grey file
            image = image[..., 0].astype(np.uint16) * 16
        cv2.imwrite(str(root / "images" / f"img{i:02d}.png"), image)
        ENCODINGS[encoding](root / "masks", f"img{i:02d}", labels)
    return root


def _png(folder: Path, stem: str, values: np.ndarray) -> None:
    cv2.imwrite(str(folder / f"{stem}.png"), values)


def _palette(folder: Path, stem: str, labels: np.ndarray) -> None:
    image = Image.fromarray(labels, mode="P")
    image.putpalette([v for colour in COLOURS for v in colour])
    image.save(folder / f"{stem}.png")


def _rgb(folder: Path, stem: str, labels: np.ndarray) -> None:
    rgb = np.asarray(COLOURS, np.uint8)[labels]
    cv2.imwrite(str(folder / f"{stem}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _jpeg(folder: Path, stem: str, labels: np.ndarray) -> None:
    cv2.imwrite(
        str(folder / f"{stem}.jpg"),
        (labels > 0).astype(np.uint8) * 255,
        [cv2.IMWRITE_JPEG_QUALITY, 70],
    )


ENCODINGS = {
    "0-1": lambda f, s, lab: _png(f, s, (lab > 0).astype(np.uint8)),
    "0-255": lambda f, s, lab: _png(f, s, (lab > 0).astype(np.uint8) * 255),
    "16-bit": lambda f, s, lab: _png(f, s, (lab > 0).astype(np.uint16) * 65535),
    "indices": lambda f, s, lab: _png(f, s, lab),
    "grey-values": lambda f, s, lab: _png(f, s, lab * 85),
    "palette": _palette,
    "rgb": _rgb,
    "instances": lambda f, s, lab: _png(f, s, lab.astype(np.uint16) * 40),
    "jpeg": _jpeg,
    "suffix": lambda f, s, lab: _png(f, f"{s}_mask", (lab > 0).astype(np.uint8) * 255),
}
