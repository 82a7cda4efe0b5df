"""The padded U-Net, with a choice of normalisation and optional dropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetcli.models.unet_parts import (
    DoubleConv,
    Down,
    OutConv,
    Up,
    check_architecture,
    check_input,
    pad_to_multiple,
)


class UNet(nn.Module):
    """U-Net whose output has the input's height and width, whatever they are.

    `widths` lists the channels per level, the last being the bottleneck, so
    the depth (number of down-samplings) is len(widths) - 1. Inputs whose sides
    are not multiples of 2**depth are padded (reflection) and the output is
    cropped back, so odd sizes never fail deep inside a skip connection.

    `norm` picks the layer after each convolution (batch, instance, group,
    none). `dropout` is applied, as in the 2015 paper, at the end of the
    contracting path: to the deepest encoder level and to the bottleneck.
    """

    #: Pixels lost on each side of the output (0: the output covers the input).
    output_margin = 0

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        upsampling: str = "transpose",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = check_architecture(widths, dropout)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = len(widths) - 1
        self.inc = DoubleConv(in_channels, widths[0], norm)
        self.downs = nn.ModuleList(Down(a, b, norm) for a, b in zip(widths[:-1], widths[1:]))
        self.ups = nn.ModuleList(
            Up(b, a, upsampling, norm) for a, b in zip(reversed(widths[:-1]), reversed(widths[1:]))
        )
        self.outc = OutConv(widths[0], num_classes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "UNet")
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, 2**self.depth)
        # The paper's dropout sits at the end of the contracting path: levels
        # depth - 1 and depth (the bottleneck), before they feed the next layer.
        skips = [self.inc(x)]
        if self.depth == 1:
            skips[0] = self.dropout(skips[0])
        for level, down in enumerate(self.downs, start=1):
            y = down(skips[-1])
            skips.append(self.dropout(y) if level >= self.depth - 1 else y)
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)[..., :height, :width]
