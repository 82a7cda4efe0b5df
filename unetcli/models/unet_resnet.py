"""U-Net with a ResNet-18/34 encoder (optionally ImageNet weights the user supplies)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.core.spatial import pad_to_multiple
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel
from unetcli.models.resnet import STAGE_CHANNELS, ResNetEncoder
from unetcli.models.unet_parts import DoubleConv, OutConv


def check_decoder(decoder_channels: Sequence[int]) -> list[int]:
    """The five decoder widths as a list, or a UnetError naming model.decoder_channels."""
    channels = list(decoder_channels)
    if len(channels) != 5 or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels
    ):
        raise UnetError(
            f"model.decoder_channels needs five positive channel counts, one per decoder block "
            f"from 1/16 of the input up to full size, got {channels}; "
            "e.g. model.decoder_channels=[256,128,64,32,16]"
        )
    return channels


class DecoderBlock(nn.Module):
    """Nearest-neighbour 2x up-sampling, concatenation with the skip (if any), DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm: str):
        super().__init__()
        self.conv = DoubleConv(in_channels + skip_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetResNet(SegmentationModel):
    """Encoder: torchvision-named ResNet; decoder: five up-sampling blocks to full size.

    The encoder's stem and four stages (1/2 to 1/32 of the input) feed the
    decoder's skips; the last block goes from 1/2 to full size without a skip.
    Inputs are mirror-padded to a multiple of 32 (`input_multiple`: the
    encoder halves the side five times) and the output cropped back, so any
    size works. `encoder_weights` is the path of a torchvision ResNet
    state_dict (ImageNet weights expect the ImageNet mean and std in
    dataset.mean / dataset.std); null starts from random weights.
    """

    input_multiple = 32

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        norm: str = "batch",
    ) -> None:
        super().__init__(in_channels, num_classes)
        decoder_channels = check_decoder(decoder_channels)
        self.encoder = ResNetEncoder(encoder, self.in_channels)
        if encoder_weights:
            self.encoder.load_torchvision(encoder_weights)
        skips = [*reversed(STAGE_CHANNELS[:-1]), 0]  # 256, 128, 64, 64 (stem), none
        ins = [STAGE_CHANNELS[-1], *decoder_channels[:-1]]
        self.decoder = nn.ModuleList(
            DecoderBlock(i, s, o, norm) for i, s, o in zip(ins, skips, decoder_channels)
        )
        self.outc = OutConv(decoder_channels[-1], self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        height, width = x.shape[-2:]
        features = self.encoder(pad_to_multiple(x, self.input_multiple))
        y = features.pop()
        for block in self.decoder:
            y = block(y, features.pop() if features else None)
        return self.outc(y)[..., :height, :width]
