"""Run-length encoding of masks in the Carvana submission format.

Pixels are numbered from 1, row-major (left to right, then top to bottom);
the code is space-separated `start length` pairs; an empty mask is "".
"""

from __future__ import annotations

import numpy as np


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero is foreground) as Carvana run-length pairs.

    The flattened mask is padded with a zero at both ends so that runs touching
    the first or the last pixel still have a start and an end.
    """
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    flat = np.zeros(mask.size + 2, dtype=np.int8)
    flat[1:-1] = np.asarray(mask).reshape(-1) != 0
    runs = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(map(str, runs.tolist()))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode Carvana run-length pairs into a uint8 0/1 mask of `shape` (height, width)."""
    height, width = shape
    flat = np.zeros(height * width, dtype=np.uint8)
    values = np.array(str(rle).split(), dtype=np.int64)
    if values.size % 2:
        raise ValueError(f"RLE has an odd number of values ({values.size}); expected pairs")
    starts, lengths = values[0::2] - 1, values[1::2]
    if values.size and (starts.min() < 0 or (starts + lengths).max() > flat.size):
        raise ValueError(f"RLE runs fall outside a {height}x{width} mask")
    for start, length in zip(starts.tolist(), lengths.tolist()):
        flat[start : start + length] = 1
    return flat.reshape(height, width)
