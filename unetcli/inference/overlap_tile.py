"""The 2015 U-Net paper's overlap-tile strategy: whole images from a valid-convolution model.

A model with `output_margin` m > 0 (unet_original) predicts only the centre
of its input: a tile of side T gives T - 2m outputs. To segment a whole image
of any size, the image is mirror-padded and cut into overlapping input tiles
whose output windows sit edge to edge; the mirrored context at the image's
borders stands in for the missing neighbourhood, as in the paper's Fig. 2.

Tiles start on multiples of the model's pooling grid (`size_multiple`,
2**depth), so each output pixel sees exactly the input it would see in one
pass over a larger image: inside the image, the result equals direct
prediction wherever direct prediction reaches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) by any amount, reflecting again where one pass is not enough."""
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        step = [min(left, width - 1), min(right, width - 1), min(top, height - 1)]
        step.append(min(bottom, height - 1))
        if height == 1 or width == 1:  # nothing to reflect: repeat the edge
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, tuple(step), mode="reflect")
        left, right, top, bottom = (
            left - step[0],
            right - step[1],
            top - step[2],
            bottom - step[3],
        )
    return x


def _layout(size: int, stride: int, pad_before: int, tile: int) -> tuple[int, int]:
    """(number of tiles, padding after the image) along one axis of `size` pixels."""
    count = max(math.ceil(size / stride), 1)
    pad_after = (count - 1) * stride + tile - pad_before - size
    return count, max(pad_after, 0)


@torch.no_grad()
def overlap_tile_predict(
    model: torch.nn.Module,
    images: torch.Tensor,
    tile_size: int | None = None,
    margin: int | None = None,
    *,
    align: int | None = None,
    batch_size: int = 4,
) -> torch.Tensor:
    """Logits (N, C, H, W) at the input's size for a model whose output loses `margin` a side.

    `tile_size` (default: the model's `tile_size`, 572 for the paper's net)
    is the input side of each tile, snapped up to a size the model takes as it
    is; `margin` defaults to the model's `output_margin`; `align` to its
    `size_multiple` (the pooling grid). The caller sets eval mode, the device
    and any autocast; tiles are run `batch_size` at a time.
    """
    margin = int(getattr(model, "output_margin", 0) if margin is None else margin)
    tile = int(getattr(model, "tile_size", 572) if tile_size is None else tile_size)
    align = int(getattr(model, "size_multiple", 1) if align is None else align)
    if hasattr(model, "valid_input_size"):
        tile = model.valid_input_size(tile)
    out_tile = tile - 2 * margin
    pad_before = math.ceil(margin / align) * align  # keeps every tile on the pooling grid
    skip = pad_before - margin  # output rows of a tile that lie before its window
    stride = (out_tile - skip) // align * align
    if stride <= 0:
        raise ValueError(
            f"tile_size {tile} is too small for margin {margin} (pooling grid {align}); "
            f"use a tile of at least {2 * margin + skip + align} pixels"
        )
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    n, _, height, width = images.shape
    rows, pad_bottom = _layout(height, stride, pad_before, tile)
    cols, pad_right = _layout(width, stride, pad_before, tile)
    padded = mirror_pad(images, pad_before, pad_bottom, pad_before, pad_right)
    origins = [(r * stride, c * stride) for r in range(rows) for c in range(cols)]
    out: torch.Tensor | None = None
    for index in range(n):
        for start in range(0, len(origins), batch_size):
            chunk = origins[start : start + batch_size]
            tiles = torch.stack([padded[index, :, y : y + tile, x : x + tile] for y, x in chunk])
            logits = model(tiles)
            if out is None:
                out = logits.new_zeros((n, logits.shape[1], height, width))
            for (y, x), result in zip(chunk, logits):
                h = min(stride, height - y)
                w = min(stride, width - x)
                out[index, :, y : y + h, x : x + w] = result[:, skip : skip + h, skip : skip + w]
    assert out is not None
    return out
