"""Where windows and tiles go over an image: torch-free, shared by predict and the ONNX runner.

`unet predict` (unetcli.inference.modes, unetcli.inference.overlap_tile) and
the torch-free runner (unetcli.runner) place sliding windows, their Gaussian
blending weights and overlap tiles with these same functions, so both cover
an image identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from unetcli.errors import UnetError


class TiledModel(Protocol):
    """What tiling reads of a model (a SegmentationModel, or the runner's inference.json)."""

    input_multiple: int
    output_margin: int
    tile_size: int | None

    def valid_input_size(self, size: int) -> int: ...


def gaussian_window(height: int, width: int) -> np.ndarray:
    """A window's blending weights (H, W) float32: a Gaussian with sigma = side / 8, peak 1.

    Centres, where the model sees the most context, count most; edges count
    little but never zero (an image corner is covered by one window only). The
    floor is applied per axis, so along an image border, where every window is
    near its own edge in one direction, the other direction still ranks them.
    """

    def axis(n: int) -> np.ndarray:
        sigma = n / 8
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        g = np.exp(-(x**2) / (2 * sigma**2))
        return np.maximum(g / g.max(), 1e-4)

    return (axis(height)[:, None] * axis(width)[None, :]).astype(np.float32)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Window offsets along one side: evenly spread, the first at 0, the last flush with the end."""
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    count = math.ceil((length - window) / stride) + 1
    step = (length - window) / (count - 1)
    return [int(round(i * step)) for i in range(count)]


@dataclass(frozen=True)
class TileGrid:
    """Where tiles go along both axes: input `tile` side, output `stride`, offsets."""

    tile: int
    stride: int
    pad_before: int  # mirrored context before the image, a multiple of the pooling grid
    skip: int  # output rows of a tile that lie before its window


def tile_grid(model: TiledModel, tile_size: int | None) -> TileGrid:
    """The tile layout for `model`, the tile snapped to a side the model takes as it is."""
    requested = model.tile_size if tile_size is None else tile_size
    if requested is None:
        raise UnetError(
            f"{type(model).__name__} names no tile_size for overlap-tile prediction; "
            "use mode=sliding with window=[height,width] (predict.* or evaluate.*)"
        )
    margin, align = model.output_margin, model.input_multiple
    tile = model.valid_input_size(requested)
    pad_before = math.ceil(margin / align) * align  # keeps every tile on the pooling grid
    skip = pad_before - margin
    stride = (tile - 2 * margin - skip) // align * align
    if stride <= 0:
        raise UnetError(
            f"a tile of {tile} pixels is too small for {type(model).__name__}, which loses "
            f"{margin} pixels a side on a {align}-pixel pooling grid; set the sliding window "
            f"(predict.window or evaluate.window) to at least {2 * margin + skip + align}"
        )
    return TileGrid(tile, stride, pad_before, skip)


def tile_layout(size: int, grid: TileGrid) -> tuple[int, int]:
    """(number of tiles, padding after the image) along one axis of `size` pixels."""
    count = max(math.ceil(size / grid.stride), 1)
    pad_after = (count - 1) * grid.stride + grid.tile - grid.pad_before - size
    return count, max(pad_after, 0)
