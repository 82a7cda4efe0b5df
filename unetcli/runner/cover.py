"""Covering an image with the ONNX graph, as unetcli.inference.modes covers it with torch.

The same decisions in NumPy: whole images (resize and full modes; the graph
pads to its multiple itself), Gaussian-blended sliding windows, overlap
tiles for valid-convolution graphs, and TTA averaging of probabilities.
Window and tile positions come from unetcli.core.tiling, shared with predict.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unetcli.core.tiling import gaussian_window, tile_grid, tile_layout, window_starts
from unetcli.runner.info import InferenceInfo

Graph = Callable[[np.ndarray], np.ndarray]  # uint8 (N, H, W, C) -> float32 (N, C, H', W')

# TTA on (N, H, W, C) pixels forward, and back on (N, C, H, W) probabilities
# (the same views as unetcli.inference.tta; np.rot90 turns as torch.rot90 does).
_FORWARD = {
    "hflip": lambda x: x[:, :, ::-1],
    "vflip": lambda x: x[:, ::-1],
    "rot90": lambda x: np.rot90(x, 1, (1, 2)),
    "rot180": lambda x: np.rot90(x, 2, (1, 2)),
    "rot270": lambda x: np.rot90(x, 3, (1, 2)),
    "transpose": lambda x: x.transpose(0, 2, 1, 3),
    "transverse": lambda x: np.rot90(x, 2, (1, 2)).transpose(0, 2, 1, 3),
}
_INVERSE = {
    "hflip": lambda y: y[..., ::-1],
    "vflip": lambda y: y[..., ::-1, :],
    "rot90": lambda y: np.rot90(y, 3, (-2, -1)),
    "rot180": lambda y: np.rot90(y, 2, (-2, -1)),
    "rot270": lambda y: np.rot90(y, 1, (-2, -1)),
    "transpose": lambda y: np.swapaxes(y, -2, -1),
    "transverse": lambda y: np.swapaxes(np.rot90(y, 2, (-2, -1)), -2, -1),
}


def mirror_pad(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pad (N, H, W, C) pixels, reflecting again where one pass is not enough
    (as unetcli.core.spatial.mirror_pad does to tensors; a 1-pixel side is repeated)."""
    while top or bottom or left or right:
        height, width = x.shape[1:3]
        if height == 1 or width == 1:
            return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="edge")
        t, b = min(top, height - 1), min(bottom, height - 1)
        lf, r = min(left, width - 1), min(right, width - 1)
        x = np.pad(x, ((0, 0), (t, b), (lf, r), (0, 0)), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return x


def _whole(graph: Graph, info: InferenceInfo, pixels: np.ndarray) -> np.ndarray:
    """One pass; sides below the graph's minimum are mirror-padded here and cropped back."""
    height, width = pixels.shape[1:3]
    low = info.input_multiple
    pad_h, pad_w = max(0, low - height), max(0, low - width)
    probs = graph(mirror_pad(pixels, 0, pad_h, 0, pad_w))
    return probs[..., :height, :width]


def _sliding(graph: Graph, info: InferenceInfo, pixels: np.ndarray) -> np.ndarray:
    """Gaussian-weighted windows, accumulated in the order unetcli.inference.modes uses."""
    n, height, width = pixels.shape[:3]
    win_h, win_w = min(info.window[0], height), min(info.window[1], width)
    boxes = [
        (y, x)
        for y in window_starts(height, win_h, info.overlap)
        for x in window_starts(width, win_w, info.overlap)
    ]
    weights = gaussian_window(win_h, win_w)
    norm = np.zeros((height, width), np.float32)
    for y, x in boxes:
        norm[y : y + win_h, x : x + win_w] += weights
    total = None
    for i in range(n):
        crops = np.stack([pixels[i, y : y + win_h, x : x + win_w] for y, x in boxes])
        probs = _whole(graph, info, crops)
        if total is None:
            total = np.zeros((n, probs.shape[1], height, width), np.float32)
        for (y, x), p in zip(boxes, probs):
            total[i, :, y : y + win_h, x : x + win_w] += p * weights
    return total / norm


def _overlap_tile(graph: Graph, info: InferenceInfo, pixels: np.ndarray) -> np.ndarray:
    """Valid-convolution graphs: mirrored tiles whose outputs sit edge to edge."""
    grid = tile_grid(info, max(info.window) if info.window else None)
    n, height, width = pixels.shape[:3]
    rows, pad_bottom = tile_layout(height, grid)
    cols, pad_right = tile_layout(width, grid)
    padded = mirror_pad(pixels, grid.pad_before, pad_bottom, grid.pad_before, pad_right)
    out = None
    for index in range(n):
        for r in range(rows):
            for c in range(cols):
                y, x = r * grid.stride, c * grid.stride
                tile = padded[index : index + 1, y : y + grid.tile, x : x + grid.tile]
                result = graph(tile)[0]
                if out is None:
                    out = np.zeros((n, result.shape[0], height, width), np.float32)
                h, w = min(grid.stride, height - y), min(grid.stride, width - x)
                skip = grid.skip
                out[index, :, y : y + h, x : x + w] = result[:, skip : skip + h, skip : skip + w]
    return out


def cover(graph: Graph, info: InferenceInfo, pixels: np.ndarray) -> np.ndarray:
    """Probabilities (N, C, H, W) for uint8 pixels (N, H, W, C) by the exported mode."""
    if info.output_margin > 0:
        return _overlap_tile(graph, info, pixels)
    if info.mode == "sliding":
        return _sliding(graph, info, pixels)
    return _whole(graph, info, pixels)


def with_tta(graph: Graph, info: InferenceInfo, pixels: np.ndarray) -> np.ndarray:
    """`cover`, averaged over the identity and each TTA view mapped back."""
    total = cover(graph, info, pixels).copy()
    for name in info.tta:
        view = np.ascontiguousarray(_FORWARD[name](pixels))
        total += _INVERSE[name](cover(graph, info, view))
    return total / np.float32(len(info.tta) + 1)
