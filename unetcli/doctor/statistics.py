"""One read of every file: image headers, intensity sums, hashes, and object sizes.

Reading runs in threads (OpenCV and Pillow release the GIL) behind a tqdm bar,
so a set of thousands of images is read once, at disk speed.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unetcli.core.cpus import usable_cores
from unetcli.core.normalisation import pixel_sample
from unetcli.core.tiff import header


@dataclass
class ImageFacts:
    """One image: size, channels, dtype, per-channel sums, a pixel sample and its content hash."""

    path: Path
    height: int
    width: int
    channels: int  # as stored (before grey is replicated to RGB)
    bits: int
    sums: np.ndarray  # per channel: sum, sum of squares, pixel count (8-bit values in 0..1)
    digest: str
    dtype: str = "uint8"
    sample: np.ndarray | None = None  # (K, C) float32 pixels as stored, drawn at random


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


_BITS = {"uint8": 8, "uint16": 16, "float32": 32}
#: Pixels kept per image for the intensity statistics (enough for percentiles over the set).
SAMPLE = 2000


def image_facts(
    path: Path, read: Callable[[Path], np.ndarray], files: Sequence[Path] = ()
) -> ImageFacts:
    """Facts of one image read by `read` (as training reads it); `files` are the files it is
    made of (one per channel for channel folders), whose headers give the stored channels."""
    pixels = read(path)
    heads = [header(f) for f in files or [path]]
    stored = sum(h[2] for h in heads if h is not None) or pixels.shape[-1]
    height, width = pixels.shape[:2]
    values = pixels.astype(np.float64)
    dtype = pixels.dtype.name
    flat = (values / 255.0 if dtype == "uint8" else values).reshape(-1, pixels.shape[-1])
    sums = np.stack([flat.sum(0), (flat**2).sum(0), np.full(flat.shape[1], len(flat))])
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    sample = pixel_sample(pixels, zlib.crc32(path.name.encode()), SAMPLE).astype(np.float32)
    return ImageFacts(
        path, height, width, stored, _BITS.get(dtype, 32), sums, digest, dtype, sample
    )


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
