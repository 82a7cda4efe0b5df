"""The padded U-Net, with a choice of normalisation and optional dropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unetcli.core.spatial import pad_to_multiple
from unetcli.models.unet_parts import UNetLevels


class UNet(UNetLevels):
    """U-Net whose output has the input's height and width, whatever they are.

    `widths` lists the channels per level, the last being the bottleneck, so
    the depth (number of down-samplings) is len(widths) - 1 and
    `input_multiple` is 2**depth. Inputs whose sides are not multiples of it
    are mirror-padded and the output is cropped back, so odd sizes never fail
    deep inside a skip connection.

    `norm` picks the layer after each convolution (batch, instance, group,
    none). `dropout` is applied, as in the 2015 paper, at the end of the
    contracting path: to the deepest encoder level and to the bottleneck.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        upsampling: str = "transpose",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, num_classes, widths, upsampling, norm, dropout, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        height, width = x.shape[-2:]
        return self.levels(pad_to_multiple(x, self.input_multiple))[..., :height, :width]
