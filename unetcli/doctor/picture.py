"""doctor.png: a few images with their masks drawn on, object sizes and class shares.

Drawn with OpenCV (the project's drawing stack, no plotting library): the masks
in the class colours of unetcli.core.drawing, as in every other picture unet writes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from unetcli.core.drawing import class_colour, overlay
from unetcli.datasets.base import Layout, Sample

TILE = 192
PANEL = (TILE, 2 * TILE + 4)


def _tile(layout: Layout, sample: Sample, ignore: int | None) -> np.ndarray:
    image = layout.read_image(sample.image)
    labels = layout.read_mask(sample.mask)
    drawn = overlay(image, labels, ignore_index=ignore)
    scale = TILE / max(drawn.shape[:2])
    size = (max(1, round(drawn.shape[1] * scale)), max(1, round(drawn.shape[0] * scale)))
    small = cv2.resize(drawn, size, interpolation=cv2.INTER_AREA)
    cell = np.full((TILE, TILE, 3), 32, np.uint8)
    cell[: small.shape[0], : small.shape[1]] = small
    return cell


def _text(canvas: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(
        canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA
    )


def _bars(title: str, labels: list[str], values: list[float], colours: list) -> np.ndarray:
    """A small bar chart: one bar per value, scaled to the largest."""
    canvas = np.full((*PANEL, 3), 24, np.uint8)
    _text(canvas, title, 6, 14)
    top = max(values) if values and max(values) > 0 else 1
    width = max(4, (PANEL[1] - 12) // max(1, len(values)))
    for i, (label, value, colour) in enumerate(zip(labels, values, colours)):
        height = int((PANEL[0] - 50) * value / top)
        x = 6 + i * width
        cv2.rectangle(
            canvas, (x, PANEL[0] - 22 - height), (x + width - 3, PANEL[0] - 22), colour, -1
        )
        if len(labels) <= 12 or i % 2 == 0:
            _text(canvas, label, x, PANEL[0] - 8)
    return canvas


def _histogram(areas: list[int]) -> np.ndarray:
    """Objects per size band (powers of two, in pixels at the planned size)."""
    bands = [int(math.log2(a)) for a in areas if a > 0] or [0]
    counts = np.bincount(bands)
    labels = [str(2**k) for k in range(len(counts))]
    return _bars(
        "objects by area (px, planned size)",
        labels,
        counts.tolist(),
        [(120, 170, 255)] * len(counts),
    )


def draw(report: dict, layout: Layout, samples: list[Sample], path: Path, ignore) -> None:
    """Write doctor.png (temporary name, then renamed)."""
    picks = [samples[i] for i in np.linspace(0, len(samples) - 1, min(4, len(samples))).astype(int)]
    tiles = [_tile(layout, s, ignore) for s in picks]
    row = np.concatenate([c for t in tiles for c in (t, np.zeros((TILE, 4, 3), np.uint8))], 1)
    freq = report["objects"]["class_frequency"]
    classes = _bars(
        "class pixel share",
        list(freq),
        list(freq.values()),
        [(90, 90, 90) if k == "0" else class_colour(int(k)) for k in freq],
    )
    charts = np.concatenate(
        [_histogram(report["objects"]["areas"]), np.zeros((TILE, 4, 3), np.uint8), classes], 1
    )
    width = max(row.shape[1], charts.shape[1])
    canvas = np.zeros((2 * TILE + 4, width, 3), np.uint8)
    canvas[:TILE, : row.shape[1]] = row
    canvas[TILE + 4 :, : charts.shape[1]] = charts
    tmp = path.with_name(f".{path.stem}.tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    os.replace(tmp, path)
