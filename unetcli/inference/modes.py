"""How an image is covered by the model: whole (`full`, also used after `resize`) or in windows.

`cover()` is the one place that decides; everything returns per-class
probabilities (N, C, H, W) in float32 on the run's device, at the input's
size. Models with valid (unpadded) convolutions, which lose `output_margin`
pixels per side, are routed to the overlap-tile strategy here as well.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.task import Task

MODES = ("resize", "full", "sliding")


def model_multiple(model: torch.nn.Module) -> int:
    """The side multiple the model needs (2**depth for the U-Net; 1 if it does not say)."""
    depth = getattr(model, "depth", None)
    return 2 ** int(depth) if isinstance(depth, int) else 1


@torch.no_grad()
def run_model(
    model: torch.nn.Module, images: torch.Tensor, runtime: Runtime, *, task: Task
) -> torch.Tensor:
    """Probabilities of one forward pass, the input padded (reflection) to the model's multiple."""
    height, width = images.shape[-2:]
    multiple = model_multiple(model)
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    x = runtime.to_input(images)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    with runtime.autocast():
        logits = model(x)
    return task.probabilities(logits[..., :height, :width])


@lru_cache(maxsize=8)
def gaussian_weights(height: int, width: int, device: str = "cpu") -> torch.Tensor:
    """A window's blending weights (H, W): a Gaussian with sigma = side / 8, peak 1.

    Centres, where the model sees the most context, count most; edges count
    little but never zero (an image corner is covered by one window only). The
    floor is applied per axis, so along an image border, where every window is
    near its own edge in one direction, the other direction still ranks them.
    """

    def axis(n: int) -> torch.Tensor:
        sigma = n / 8
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        g = torch.exp(-(x**2) / (2 * sigma**2))
        return (g / g.max()).clamp(min=1e-4)

    return (axis(height)[:, None] * axis(width)[None, :]).float().to(device)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Window offsets along one side: evenly spread, the first at 0, the last flush with the end."""
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    count = math.ceil((length - window) / stride) + 1
    step = (length - window) / (count - 1)
    return [int(round(i * step)) for i in range(count)]


@torch.no_grad()
def sliding_window(
    model: torch.nn.Module,
    images: torch.Tensor,
    runtime: Runtime,
    window: tuple[int, int],
    overlap: float,
    batch_size: int,
    *,
    task: Task,
) -> torch.Tensor:
    """Gaussian-weighted blend of overlapping windows (N, C, H, W) -> probabilities.

    Windows are batched `batch_size` at a time; each pixel's result is the
    weighted mean of the windows covering it, so window edges leave no seams.
    """
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
            probs = run_model(model, crops, runtime, task=task)
            if total is None:
                total = torch.zeros(
                    (n, probs.shape[1], height, width), device=runtime.device, dtype=torch.float32
                )
            for (y, x), p in zip(chunk, probs):
                total[i, :, y : y + win_h, x : x + win_w] += p * weights
    assert total is not None
    return total / norm


def overlap_tile(
    model: torch.nn.Module, images: torch.Tensor, runtime: Runtime, tile: int | None, *, task: Task
) -> torch.Tensor:
    """Valid-convolution models (`output_margin` > 0): the overlap-tile strategy.

    The catalogue branch provides `unetcli.inference.overlap_tile`; this is the
    one call site, so merging it needs no other change.
    """
    try:
        from unetcli.inference.overlap_tile import overlap_tile_predict
    except ImportError as err:
        raise UnetError(
            "predict for valid-convolution models needs unetcli.inference.overlap_tile, "
            "which this installation lacks; use a padded model (model=unet)"
        ) from err
    with torch.no_grad(), runtime.autocast():
        logits = overlap_tile_predict(
            model, runtime.to_input(images), tile, int(model.output_margin)
        )
    return task.probabilities(logits)


def cover(
    model: torch.nn.Module,
    images: torch.Tensor,
    runtime: Runtime,
    mode: str,
    window: tuple[int, int] | None,
    overlap: float,
    batch_size: int,
    *,
    task: Task,
) -> torch.Tensor:
    """Probabilities (N, C, H, W) for a batch of transformed images, by `mode` and `task`.

    `resize` and `full` both run the whole (already resized, or original-size)
    input at once; `sliding` blends windows of `window` (height, width).
    """
    if getattr(model, "output_margin", 0) > 0:
        # Sliding mode's window sets the tile; otherwise the model's own (572 for the paper's).
        return overlap_tile(model, images, runtime, max(window) if window else None, task=task)
    if mode == "sliding":
        if window is None:
            raise UnetError("internal: sliding mode without a window size")
        return sliding_window(model, images, runtime, window, overlap, batch_size, task=task)
    return run_model(model, images, runtime, task=task)
