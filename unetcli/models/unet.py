"""The padded U-Net with batch norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.models.unet_parts import DoubleConv, Down, OutConv, Up


class UNet(nn.Module):
    """U-Net whose output has the input's height and width, whatever they are.

    `widths` lists the channels per level, the last being the bottleneck, so
    the depth (number of down-samplings) is len(widths) - 1. Inputs whose sides
    are not multiples of 2**depth are padded (reflection) and the output is
    cropped back, so odd sizes never fail deep inside a skip connection.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        upsampling: str = "transpose",
    ) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2:
            raise ValueError("model.widths needs at least two levels, e.g. [64, 128]")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = len(widths) - 1
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.ups = nn.ModuleList(
            Up(b, a, upsampling) for a, b in zip(reversed(widths[:-1]), reversed(widths[1:]))
        )
        self.outc = OutConv(widths[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects input of shape (batch, {self.in_channels}, height, width), "
                f"got {tuple(x.shape)}; set model.in_channels (or dataset.in_channels) to match "
                "the images"
            )
        height, width = x.shape[-2:]
        x = self._pad(x)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)[..., :height, :width]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.depth
        pad_h = (-x.shape[-2]) % multiple
        pad_w = (-x.shape[-1]) % multiple
        if not (pad_h or pad_w):
            return x
        # Reflection needs the pad to be smaller than the side; fall back to zeros.
        mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "constant"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
