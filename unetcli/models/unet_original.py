"""The 2015 paper's U-Net: unpadded convolutions, crop-and-concatenate skips.

Every 3x3 convolution is unpadded, so each block loses two pixels per side
and the output is smaller than the input: 572x572 in, 388x388 out for the
paper's four down-samplings, a margin of 92 pixels on each side. The output
pixel (i, j) is the prediction for input pixel (i + margin, j + margin), so a
training mask is centre-cropped to the output (see unetcli.training.loop) and
whole images are predicted tile by tile with mirrored context
(unetcli.inference.overlap_tile).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.models.unet_parts import DoubleConv, Down, OutConv, Up, check_architecture, check_input


def output_size(size: int, depth: int) -> int | None:
    """Output side for an input side, or None if the network cannot take that side.

    A side is valid when every feature map before a 2x2 pooling is even and
    nothing shrinks to zero on the way down or up.
    """
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    for _ in range(depth):
        if size <= 0:
            return None
        size = 2 * size - 4
    return size if size > 0 else None


def valid_size(size: int, depth: int) -> int:
    """The smallest valid input side >= size (valid sides repeat every 2**depth)."""
    size = max(int(size), 1)
    while output_size(size, depth) is None:
        size += 1
    return size


class UNetOriginal(nn.Module):
    """The paper's network, for any input of at least `min_input_size` pixels a side.

    The output is always the input minus `output_margin` on each side. Sides
    the pooling cannot take are mirror-padded at the bottom and right to the
    next valid size and the extra output is cut off, so odd sizes work too.
    Weights start from the paper's Gaussian of standard deviation sqrt(2/N),
    N the fan-in. `dropout` (the paper: 0.5, "at the end of the contracting
    path") acts on the deepest encoder level and the bottleneck.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        upsampling: str = "transpose",
        norm: str = "none",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        widths = check_architecture(widths, dropout)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = len(widths) - 1
        #: Inputs align with the pooling grid at multiples of this (see overlap_tile).
        self.size_multiple = 2**self.depth
        self.min_input_size = valid_size(1, self.depth)
        self.output_margin = (
            self.min_input_size - output_size(self.min_input_size, self.depth)
        ) // 2
        #: The paper's tile: 572 (valid for depths 1 to 5), for overlap-tile prediction.
        self.tile_size = valid_size(572, self.depth)
        self.inc = DoubleConv(in_channels, widths[0], norm, padding=0)
        self.downs = nn.ModuleList(
            Down(a, b, norm, padding=0) for a, b in zip(widths[:-1], widths[1:])
        )
        self.ups = nn.ModuleList(
            Up(b, a, upsampling, norm, padding=0)
            for a, b in zip(reversed(widths[:-1]), reversed(widths[1:]))
        )
        self.outc = OutConv(widths[0], num_classes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def valid_input_size(self, size: int) -> int:
        """The smallest side >= size that this network takes without padding."""
        return valid_size(size, self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "UNetOriginal")
        height, width = x.shape[-2:]
        margin = self.output_margin
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f"unet_original needs inputs of at least {self.min_input_size}x"
                f"{self.min_input_size} pixels (it loses {margin} on each side), got "
                f"{height}x{width}; raise dataset.image_size or use fewer model.widths"
            )
        pad_h = valid_size(height, self.depth) - height
        pad_w = valid_size(width, self.depth) - width
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        skips = [self.inc(x)]
        if self.depth == 1:
            skips[0] = self.dropout(skips[0])
        for level, down in enumerate(self.downs, start=1):
            y = down(skips[-1])
            skips.append(self.dropout(y) if level >= self.depth - 1 else y)
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)[..., : height - 2 * margin, : width - 2 * margin]
