"""Spatial helpers shared by models, training and inference: pad, crop, mirror.

They live here, below every layer that uses them, so that training and
inference never import each other for a padding function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect-pad (..., H, W) by any amount, reflecting again where one pass is not enough.

    A side of one pixel has nothing to reflect: it is repeated instead.
    """
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        if height == 1 or width == 1:
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        step = (
            min(left, width - 1),
            min(right, width - 1),
            min(top, height - 1),
            min(bottom, height - 1),
        )
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (
            left - step[0],
            right - step[1],
            top - step[2],
            bottom - step[3],
        )
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Mirror-pad height and width at the bottom and right up to a multiple of `multiple`."""
    pad_h = (-x.shape[-2]) % multiple
    pad_w = (-x.shape[-1]) % multiple
    if not (pad_h or pad_w):
        return x
    return mirror_pad(x, 0, pad_h, 0, pad_w)


def center_crop(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """The central (height, width) window of x's last two dimensions.

    Raises ValueError when the window is larger than x: callers that take
    sizes from user input turn that into a UnetError naming the key.
    """
    height, width = int(size[0]), int(size[1])
    if x.shape[-2:] == (height, width):
        return x
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to the larger {(height, width)}")
    return x[..., top : top + height, left : left + width]
