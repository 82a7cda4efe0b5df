"""Which mask encoding a folder holds, from every mask's stored pixels, and the options for it.

Recognised: binary 0/1, 0/255 (or 0/65535), class indices, grey values that
stand for classes (0/85/170/255), palette PNGs, RGB colours (with the colour
table to use), instance labels (many values, each one connected object) and
lossy JPEG masks (values smeared around 0 and the maximum).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unetcli.datasets.colours import packed

#: More distinct colours than this in RGB masks means lossy colours, not a class table.
MAX_COLOURS = 64
#: Share of pixels near 0 or near the maximum above which many grey values mean lossy masks.
NEAR_EXTREMES = 0.97


@dataclass
class MaskSummary:
    """What one mask file stores: its kind, bit depth and values (or colours)."""

    kind: str  # grey | rgb | palette
    bits: int
    lossy_file: bool
    values: dict[int, int]  # value (or packed colour) -> pixel count
    objects_per_value: float  # mean connected components per non-zero value (grey, palette)
    shape: tuple[int, int] = (0, 0)  # height, width


@dataclass
class Encoding:
    """The encoding found for the whole set, the options that read it, and the colour table."""

    name: str
    detail: str
    options: dict[str, object] = field(default_factory=dict)
    colours: list[tuple[int, int, int]] = field(default_factory=list)


def summarise_mask(path: Path) -> MaskSummary:
    """Read one mask as stored (palette indices, colours or grey values)."""
    with Image.open(path) as image:
        mode = image.mode
        pixels = np.array(image) if mode == "P" else None
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if pixels is None else pixels
    if raw is None:
        raise ValueError(f"cannot decode {path}")
    lossy = path.suffix.lower() in (".jpg", ".jpeg")
    bits = 8 * raw.dtype.itemsize
    if raw.ndim == 3:
        rgb = raw[..., 2::-1] if raw.shape[2] >= 3 else raw[..., :1]
        if rgb.shape[2] == 3 and not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        ):
            keys, counts = np.unique(packed(rgb), return_counts=True)
            found = dict(zip(keys.tolist(), counts.tolist()))
            return MaskSummary("rgb", bits, lossy, found, 0.0, raw.shape[:2])
        raw = rgb[..., 0]
    keys, counts = np.unique(raw, return_counts=True)
    kind = "palette" if mode == "P" else "grey"
    found = dict(zip(keys.tolist(), counts.tolist()))
    return MaskSummary(kind, bits, lossy, found, _objects_per_value(raw, keys), raw.shape[:2])


def _objects_per_value(raw: np.ndarray, keys: np.ndarray) -> float:
    """Mean number of connected pieces per non-zero value (1.0 for instance labels)."""
    values = [v for v in keys.tolist() if v != 0][:64]
    if not values:
        return 0.0
    pieces = [
        cv2.connectedComponents((raw == v).astype(np.uint8), connectivity=8)[0] - 1 for v in values
    ]
    return float(np.mean(pieces))


def decide(summaries: list[MaskSummary]) -> Encoding:
    """One encoding for the set (the kind most masks have), with its dataset options."""
    kinds = Counter(s.kind for s in summaries)
    kind = kinds.most_common(1)[0][0]
    chosen = [s for s in summaries if s.kind == kind]
    values: Counter[int] = Counter()
    for s in chosen:
        values.update(s.values)
    if kind == "palette":
        return _indices("palette PNG", values, {"dataset.layout.palette": True})
    if kind == "rgb":
        return _colours(values)
    return _grey(chosen, values)


def _grey(chosen: list[MaskSummary], values: Counter[int]) -> Encoding:
    bits = max(s.bits for s in chosen)
    depth = f"{bits}-bit " if bits > 8 else ""
    top = max(values)
    foreground = [v for v in values if v != 0]
    if any(s.lossy_file for s in chosen) or (len(values) > 2 and _near_extremes(values)):
        cut = top // 2
        return Encoding(
            "lossy JPEG masks",
            f"{len(values)} grey values smeared around 0 and "
            f"{top}; everything above {cut} is object",
            {"dataset.num_classes": 1, "dataset.layout.threshold": cut},
        )
    if len(foreground) <= 1:
        value = foreground[0] if foreground else 1
        return Encoding(
            f"binary 0/{value}", f"{depth}masks holding 0 and {value}", {"dataset.num_classes": 1}
        )
    median_pieces = float(np.median([s.objects_per_value for s in chosen]))
    if len(foreground) >= 6 and median_pieces <= 1.2:
        return Encoding(
            "instance labels",
            f"{depth}masks numbering {len(foreground)} objects "
            "(one value each); all of them are foreground",
            {"dataset.num_classes": 1, "dataset.layout.threshold": 0},
        )
    return _indices(f"{depth}class indices", values, {})


def _near_extremes(values: Counter[int]) -> bool:
    top = max(values)
    near = sum(n for v, n in values.items() if v <= 0.1 * top or v >= 0.9 * top)
    return near >= NEAR_EXTREMES * sum(values.values()) and len(values) > 6


def _indices(name: str, values: Counter[int], options: dict[str, object]) -> Encoding:
    """Class numbers 0..K-1 (255 = unlabelled beside small indices), else a value list."""
    classes = sorted(values)
    ignore = 255 if 255 in classes and len(classes) > 2 and max(classes[:-1]) < 64 else None
    if ignore is not None:
        classes.remove(255)
        options["dataset.ignore_index"] = 255
    if classes != list(range(len(classes))):
        options["dataset.layout.mask_values"] = classes
        name = f"{name.replace('class indices', 'grey values')} standing for classes"
    count = len(classes)
    options["dataset.num_classes"] = 1 if count <= 2 else count
    listed = ", ".join(str(v) for v in classes[:12])
    more = " (255 = not labelled)" if ignore is not None else ""
    kinds = f"{count} classes" if count > 2 else "binary, 0 = background"
    return Encoding(name, f"values {listed}{more}: {kinds}", options)


def _colours(values: Counter[int]) -> Encoding:
    if len(values) > MAX_COLOURS:
        return Encoding(
            "lossy colour masks",
            f"{len(values)} distinct colours: saved as JPEG or "
            "resized with interpolation; export them again as PNG with exact colours",
        )
    keys = sorted(values)  # black (0) first: background is class 0
    colours = [(k >> 16, (k >> 8) & 255, k & 255) for k in keys]
    count = len(colours)
    options = {
        "dataset.num_classes": 1 if count == 2 else count,
        "dataset.layout.class_csv": "<colour table>",
    }
    shown = ", ".join(f"({r},{g},{b})" for r, g, b in colours[:8])
    return Encoding("RGB colours", f"{count} colours {shown}: one class each", options, colours)
