"""The 2015 paper's U-Net: unpadded convolutions, crop-and-concatenate skips.

Every 3x3 convolution is unpadded, so each block loses two pixels per side
and the output is smaller than the input: 572x572 in, 388x388 out for the
paper's four down-samplings, a margin of 92 pixels on each side. The output
pixel (i, j) is the prediction for input pixel (i + margin, j + margin), so a
training mask is centre-cropped to the output (see unetcli.training.step) and
whole images are predicted tile by tile with mirrored context
(unetcli.inference.overlap_tile).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetcli.core.spatial import mirror_pad
from unetcli.models.unet_parts import UNetLevels

#: The paper's input tile (valid for depths 1 to 5), for overlap-tile prediction.
PAPER_TILE = 572


def valid_output_size(size: int, depth: int) -> int | None:
    """Output side for an input side, or None if the network cannot take that side as it is.

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
    while valid_output_size(size, depth) is None:
        size += 1
    return size


class UNetOriginal(UNetLevels):
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
        super().__init__(in_channels, num_classes, widths, upsampling, norm, dropout, padding=0)
        self.min_input_size = valid_size(1, self.depth)
        lost = self.min_input_size - valid_output_size(self.min_input_size, self.depth)
        self.output_margin = lost // 2
        self.tile_size = valid_size(PAPER_TILE, self.depth)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def valid_input_size(self, size: int) -> int:
        """The smallest side >= size that this network takes without padding.

        Not simply a multiple of `input_multiple`: each level's unpadded
        convolutions shift the grid, so valid sides are 188, 204, 220, ... at
        depth 4 (still `input_multiple` apart).
        """
        return valid_size(size, self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        height, width = x.shape[-2:]
        pad_h = self.valid_input_size(height) - height
        pad_w = self.valid_input_size(width) - width
        logits = self.levels(mirror_pad(x, 0, pad_h, 0, pad_w))
        return logits[..., : self.output_size(height), : self.output_size(width)]
