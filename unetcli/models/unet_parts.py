"""The U-Net's building blocks, small enough to read at a glance."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "group", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation after each convolution: batch, instance, group or none.

    Group norm uses gcd(32, channels) groups (32 as in Wu and He, fewer for
    narrow layers), so any width works. `none` returns an Identity, which keeps
    the block's layer indices, and so checkpoint keys, the same for every kind.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.norm must be one of {', '.join(NORMS)}, not {kind!r}")


class DoubleConv(nn.Module):
    """(3x3 conv, norm, ReLU) twice.

    `padding=1` keeps the spatial size (the padded U-Net); `padding=0` is the
    2015 paper's unpadded convolution, which loses two pixels per side per block.
    Convolutions carry a bias only without a norm layer (a norm cancels it).
    """

    def __init__(
        self, in_channels: int, out_channels: int, norm: str = "batch", padding: int = 1
    ) -> None:
        super().__init__()
        bias = norm == "none"
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=bias),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=padding, bias=bias),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Down(nn.Module):
    """Halve the resolution with max-pooling, then DoubleConv."""

    def __init__(
        self, in_channels: int, out_channels: int, norm: str = "batch", padding: int = 1
    ) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, norm, padding)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Up(nn.Module):
    """Double the resolution, concatenate the skip connection, then DoubleConv.

    `transpose` learns the up-sampling (the paper's "up-convolution");
    `bilinear` interpolates and uses a 1x1 conv to halve the channels, which
    has fewer parameters and no checkerboard artefacts. A skip larger than the
    up-sampled map (the unpadded network) is centre-cropped to it first: the
    paper's crop-and-concatenate.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mode: str = "transpose",
        norm: str = "batch",
        padding: int = 1,
    ) -> None:
        super().__init__()
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        else:
            raise ValueError(f"model.upsampling must be 'transpose' or 'bilinear', not {mode!r}")
        self.conv = DoubleConv(2 * out_channels, out_channels, norm, padding)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))


class OutConv(nn.Module):
    """1x1 convolution to one logit per class."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def center_crop(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """The central (height, width) window of x's last two dimensions."""
    height, width = int(size[0]), int(size[1])
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to the larger {(height, width)}")
    return x[..., top : top + height, left : left + width]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad height and width at the bottom and right up to a multiple (reflection if possible)."""
    pad_h = (-x.shape[-2]) % multiple
    pad_w = (-x.shape[-1]) % multiple
    if not (pad_h or pad_w):
        return x
    # Reflection needs the pad to be smaller than the side; fall back to zeros.
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "constant"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def check_input(x: torch.Tensor, in_channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expects input of shape (batch, {in_channels}, height, width), "
            f"got {tuple(x.shape)}; set model.in_channels (or dataset.in_channels) to match "
            "the images"
        )


def check_architecture(widths: Sequence[int], dropout: float) -> list[int]:
    """Validate the YAML's widths and dropout before any layer is built; return widths as a list."""
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError("model.widths needs at least two levels, e.g. [64, 128]")
    if not 0 <= dropout < 1:
        raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
    return widths
