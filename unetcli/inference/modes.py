"""How an image is covered by the model: whole (`full`, also used after `resize`) or in windows.

`cover()` is the one place that decides; everything returns per-class
probabilities (N, C, H, W) in float32 on the run's device, at the input's
size. Models with valid (unpadded) convolutions, which lose `output_margin`
pixels per side, are routed to the overlap-tile strategy here as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import torch

from unetcli.core.hardware import Runtime
from unetcli.core.spatial import mirror_pad
from unetcli.core.task import Task
from unetcli.core.tiling import gaussian_window, window_starts
from unetcli.errors import UnetError
from unetcli.inference.overlap_tile import overlap_tile_predict
from unetcli.models.contract import SegmentationModel

__all__ = ["MODES", "cover", "gaussian_weights", "sliding_window", "window_starts"]

MODES = ("resize", "full", "sliding")


class CoverOptions(Protocol):
    """What `cover` reads of the inference options (InferenceOptions has all of it)."""

    @property
    def mode(self) -> str: ...
    @property
    def window(self) -> tuple[int, int] | None: ...
    @property
    def overlap(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def task(self) -> Task: ...


@dataclass(frozen=True)
class Cover:
    """The settings of `cover`, for callers without a full InferenceOptions."""

    mode: str
    window: tuple[int, int] | None
    overlap: float
    batch_size: int
    task: Task


@torch.no_grad()
def run_model(
    model: SegmentationModel, images: torch.Tensor, runtime: Runtime, task: Task
) -> torch.Tensor:
    """Probabilities of one forward pass of a same-size (padded) model.

    The input is mirror-padded at the bottom and right to the model's
    `valid_input_size` here, once, so the model does not pad it again, and the
    result is cropped back to the input's size.
    """
    height, width = images.shape[-2:]
    pad_h = model.valid_input_size(height) - height
    pad_w = model.valid_input_size(width) - width
    x = mirror_pad(runtime.to_input(images), 0, pad_h, 0, pad_w)
    with runtime.autocast():
        logits = model(x)
    return task.probabilities(logits[..., :height, :width])


@lru_cache(maxsize=8)
def gaussian_weights(height: int, width: int, device: str = "cpu") -> torch.Tensor:
    """A window's blending weights (H, W) on `device` (see unetcli.core.tiling.gaussian_window)."""
    return torch.from_numpy(gaussian_window(height, width)).to(device)


@torch.no_grad()
def sliding_window(
    model: SegmentationModel, images: torch.Tensor, runtime: Runtime, options: CoverOptions
) -> torch.Tensor:
    """Gaussian-weighted blend of overlapping windows (N, C, H, W) -> probabilities.

    Windows of `options.window` overlap by `options.overlap` and are batched
    `options.batch_size` at a time; each pixel's result is the weighted mean
    of the windows covering it, so window edges leave no seams.
    """
    if options.window is None:
        raise UnetError("internal: sliding mode without a window size")
    window, overlap, batch_size = options.window, options.overlap, options.batch_size
    n, _, height, width = images.shape
    win_h, win_w = min(window[0], height), min(window[1], width)
    ys = window_starts(height, win_h, overlap)
    xs = window_starts(width, win_w, overlap)
    weights = gaussian_weights(win_h, win_w, str(runtime.device))
    total: torch.Tensor | None = None
    norm = torch.zeros((height, width), device=runtime.device)
    boxes = [(y, x) for y in ys for x in xs]
    for y, x in boxes:
        norm[y : y + win_h, x : x + win_w] += weights
    per_image = max(1, batch_size)
    for i in range(n):
        image = images[i]
        for start in range(0, len(boxes), per_image):
            chunk = boxes[start : start + per_image]
            crops = torch.stack([image[:, y : y + win_h, x : x + win_w] for y, x in chunk])
            probs = run_model(model, crops, runtime, options.task)
            if total is None:
                total = torch.zeros(
                    (n, probs.shape[1], height, width), device=runtime.device, dtype=torch.float32
                )
            for (y, x), p in zip(chunk, probs):
                total[i, :, y : y + win_h, x : x + win_w] += p * weights
    assert total is not None
    return total / norm


@torch.no_grad()
def overlap_tile(
    model: SegmentationModel, images: torch.Tensor, runtime: Runtime, options: CoverOptions
) -> torch.Tensor:
    """Valid-convolution models (`output_margin` > 0): the paper's overlap-tile strategy.

    The tile's input side is the sliding window's longer side if one is set,
    else the model's own `tile_size`.
    """
    tile = max(options.window) if options.window else None
    with runtime.autocast():
        logits = overlap_tile_predict(model, runtime.to_input(images), tile)
    return options.task.probabilities(logits)


def cover(
    model: SegmentationModel,
    images: torch.Tensor,
    runtime: Runtime,
    options: CoverOptions,
) -> torch.Tensor:
    """Probabilities (N, C, H, W) for a batch of transformed images, by `options.mode`.

    The task (`options.task`) turns logits into probabilities.

    `resize` and `full` both run the whole (already resized, or original-size)
    input at once; `sliding` blends windows of `options.window` (height,
    width), `options.batch_size` windows at a time. A model that loses
    `output_margin` pixels a side always goes through overlap-tile, whose tile
    is the sliding window's longer side if one is set, else the model's own.
    """
    if model.output_margin > 0:
        return overlap_tile(model, images, runtime, options)
    if options.mode == "sliding":
        return sliding_window(model, images, runtime, options)
    return run_model(model, images, runtime, options.task)
