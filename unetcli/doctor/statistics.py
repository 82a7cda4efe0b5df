"""One read of every file: image headers, intensity sums, hashes, and object sizes.

Reading runs in threads (OpenCV and Pillow release the GIL) behind a tqdm bar,
so a set of thousands of images is read once, at disk speed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from unetcli.core.cpus import usable_cores
from unetcli.datasets.io import read_image


@dataclass
class ImageFacts:
    """One image: size, channels, bit depth, per-channel sums and its content hash."""

    path: Path
    height: int
    width: int
    channels: int
    bits: int
    sums: np.ndarray  # per channel: sum, sum of squares, pixel count (values in 0..1)
    digest: str


@dataclass
class MaskFacts:
    """One decoded mask at the planned size: pixels per class and object areas per class."""

    pixels: dict[int, int]
    objects: dict[int, list[int]]
    total: int  # pixels of the (resized) image, the denominator of class shares


def threaded(fn: Callable, items: list, desc: str) -> list:
    """fn over items in threads, in order, with a progress bar."""
    workers = min(8, usable_cores())
    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=None))


_BITS = {"I;16": 16, "I;16B": 16, "I": 32, "F": 32, "1": 1}
_CHANNELS = {"L": 1, "P": 3, "I;16": 1, "I;16B": 1, "I": 1, "F": 1, "LA": 1, "1": 1}


def image_facts(path: Path, channels: int) -> ImageFacts:
    """Header facts from Pillow, statistics from the pixels as training reads them."""
    with Image.open(path) as header:
        mode, (width, height) = header.mode, header.size
    pixels = read_image(path, channels).astype(np.float64) / 255.0
    flat = pixels.reshape(-1, pixels.shape[-1])
    sums = np.stack([flat.sum(0), (flat**2).sum(0), np.full(flat.shape[1], len(flat))])
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    stored = _CHANNELS.get(mode, 3 if mode.startswith("RGB") else 1)
    return ImageFacts(path, height, width, stored, _BITS.get(mode, 8), sums, digest)


def mean_std(facts: Iterable[ImageFacts]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over every pixel of every image (0..1 units)."""
    total = sum(f.sums for f in facts)
    mean = total[0] / total[2]
    std = np.sqrt(np.maximum(total[1] / total[2] - mean**2, 0))
    return [round(float(m), 4) for m in mean], [round(max(float(s), 1e-3), 4) for s in std]


def mask_facts(labels: np.ndarray, size: tuple[int, int] | None, ignore: int | None) -> MaskFacts:
    """Class pixel counts and connected-object areas after resizing to the planned size."""
    planes = labels if labels.ndim == 3 else None
    if size is not None:
        height, width = size
        if planes is not None:
            planes = np.stack([_resize(p, width, height) for p in planes])
        else:
            labels = _resize(labels, width, height)
    if planes is not None:  # multilabel: class k is plane k - 1
        pixels = {k + 1: int(p.sum()) for k, p in enumerate(planes)}
        objects = {k + 1: _areas(p == 1) for k, p in enumerate(planes)}
        return MaskFacts(pixels, objects, int(planes[0].size))
    values, counts = np.unique(labels, return_counts=True)
    pixels = {int(v): int(n) for v, n in zip(values, counts) if v != ignore}
    objects = {v: _areas(labels == v) for v in pixels if v != 0}
    return MaskFacts(pixels, objects, int(sum(pixels.values())))


def _resize(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def _areas(binary: np.ndarray) -> list[int]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    return stats[1:count, cv2.CC_STAT_AREA].tolist()
