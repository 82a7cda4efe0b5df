"""Plots drawn with OpenCV (no matplotlib in the stack): Dice histogram, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
BAR, MEAN = (70, 130, 180), (220, 50, 50)

# Lower ends tried for the histogram's range: the largest one below every value is used,
# so 0.990-0.998 Dice (Carvana) is spread out instead of filling one bar.
_LOWER_ENDS = (0.999, 0.998, 0.995, 0.99, 0.98, 0.95, 0.9, 0.8, 0.5, 0.0)


def text(
    canvas: np.ndarray,
    s: str,
    org: tuple[int, int],
    scale: float = 0.45,
    colour=BLACK,
    thickness: int = 1,
) -> None:
    cv2.putText(canvas, s, org, FONT, scale, colour, thickness, cv2.LINE_AA)


def text_width(s: str, scale: float = 0.45, thickness: int = 1) -> int:
    return cv2.getTextSize(s, FONT, scale, thickness)[0][0]


def histogram_range(values: Sequence[float]) -> tuple[float, float]:
    low = min(values) if len(values) else 0.0
    return next(e for e in _LOWER_ENDS if e <= low), 1.0


def dice_histogram(
    values: Sequence[float],
    title: str = "Dice per image",
    bins: int = 25,
    size: tuple[int, int] = (420, 720),
) -> np.ndarray:
    """An RGB uint8 bar chart of the values (counts per bin), with the mean marked."""
    height, width = size
    canvas = np.full((height, width, 3), 255, np.uint8)
    values = np.asarray(list(values), dtype=float)
    lo, hi = histogram_range(values)
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    left, right, top, bottom = 60, width - 20, 50, height - 50
    cv2.rectangle(canvas, (left, top), (right, bottom), GREY, 1)
    peak = max(int(counts.max()) if counts.size else 0, 1)
    bin_w = (right - left) / bins
    for i, c in enumerate(counts):
        if c == 0:
            continue
        x0, x1 = int(left + i * bin_w) + 1, int(left + (i + 1) * bin_w) - 1
        y0 = int(bottom - (bottom - top) * c / peak)
        cv2.rectangle(canvas, (x0, y0), (max(x1, x0), bottom), BAR, -1)
    for k in range(6):  # x ticks
        v = lo + (hi - lo) * k / 5
        x = int(left + (right - left) * k / 5)
        cv2.line(canvas, (x, bottom), (x, bottom + 5), BLACK, 1)
        label = f"{v:.3f}".rstrip("0").rstrip(".") if v else "0"
        text(canvas, label, (x - text_width(label) // 2, bottom + 20))
    for k in (0, 1):  # y ticks: 0 and the peak count
        y = bottom - (bottom - top) * k
        label = str(peak * k)
        text(canvas, label, (left - 8 - text_width(label), y + 5))
    if values.size:
        mean = float(values.mean())
        x = int(left + (right - left) * (np.clip(mean, lo, hi) - lo) / (hi - lo))
        for y in range(top, bottom, 8):  # dashed line
            cv2.line(canvas, (x, y), (x, min(y + 4, bottom)), MEAN, 2)
        title = f"{title}: {values.size} images, mean {mean:.4f}, min {values.min():.4f}"
    text(canvas, title, (left, 30), 0.55)
    text(canvas, "Dice", ((left + right) // 2 - 15, height - 12))
    text(canvas, "images", (4, top - 10))
    return canvas


def confusion_image(cm: np.ndarray, names: Sequence[str], cell: int = 0) -> np.ndarray:
    """An RGB uint8 heat map of the row-normalised confusion matrix (rows: truth)."""
    n = cm.shape[0]
    names = [str(s) for s in names]
    cell = cell or max(64, max(text_width(s, 0.4) for s in names) + 10)
    label_w = max(text_width(s) for s in names) + 16
    title = "truth (rows) vs prediction (columns), share of each true class"
    top = 70
    width = max(label_w + n * cell + 20, text_width(title) + 12)
    canvas = np.full((top + n * cell + 30, width, 3), 255, np.uint8)
    rows = cm.sum(1, keepdims=True).astype(float)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    for i in range(n):
        text(canvas, names[i], (6, top + i * cell + cell // 2 + 5))
        for j in range(n):
            level = int(255 - 200 * share[i, j])
            x0, y0 = label_w + j * cell, top + i * cell
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (level, level, 255), -1)
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), GREY, 1)
            label = f"{100 * share[i, j]:.1f}%"
            colour = WHITE if share[i, j] > 0.6 else BLACK
            text(
                canvas,
                label,
                (x0 + (cell - text_width(label, 0.4)) // 2, y0 + cell // 2 + 5),
                0.4,
                colour,
            )
    for j in range(n):
        text(canvas, names[j], (label_w + j * cell + 4, top - 8), 0.4)
    text(canvas, title, (6, 22), 0.45)
    return canvas
