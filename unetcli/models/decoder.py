"""The U-Net decoder that every encoder model shares (unet_resnet, unet_timm).

An encoder gives feature maps at growing reductions (the input side divided by 2, 4, ...,
32 for most families; ConvNeXt starts at 4). The decoder climbs back one halving per
block: 2x nearest up-sampling, concatenation with the encoder's map of that size where
there is one, then two 3x3 conv-norm-ReLU. Blocks above the encoder's first map (e.g.
1/2 and full size for ConvNeXt) have no skip.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.core.spatial import pad_to_multiple
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel
from unetcli.models.unet_parts import DoubleConv

WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


def check_decoder(decoder_channels: Sequence[int], blocks: int = 5) -> list[int]:
    """The decoder widths as a list of `blocks` counts, or a UnetError naming the key."""
    channels = list(decoder_channels)
    if len(channels) != blocks or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels
    ):
        example = [max(16, 256 >> i) for i in range(blocks)]
        count = WORDS.get(blocks, str(blocks))
        raise UnetError(
            f"model.decoder_channels needs {count} positive channel counts, one per decoder "
            f"block from 1/{2 ** (blocks - 1)} of the input up to full size (the encoder's "
            f"deepest map is 1/{2**blocks}), got {channels}; e.g. "
            f"model.decoder_channels=[{','.join(map(str, example))}]"
        )
    return channels


def halvings(reductions: Sequence[int], encoder: str) -> int:
    """How many 2x steps lead from the deepest feature map back to full size.

    The reductions must be distinct powers of two in increasing order (one map per
    size): a transformer whose maps all have one size (ViT) has no U-Net shape.
    """
    ok = all(r >= 1 and r & (r - 1) == 0 for r in reductions) and all(
        a < b for a, b in zip(reductions, reductions[1:])
    )
    if not reductions or not ok or reductions[-1] < 2:
        raise UnetError(
            f"model.encoder={encoder} gives feature maps at reductions {list(reductions)} of "
            "the input; a U-Net decoder needs maps that halve in size from one to the next "
            "(e.g. 2, 4, 8, 16, 32). Choose a convolutional family (resnet*, efficientnet*, "
            "convnext*, regnet*, mobilenetv3*; docs: Encoders)."
        )
    return reductions[-1].bit_length() - 1


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


class UNetDecoder(nn.ModuleList):
    """The decoder blocks, deepest first; `forward(features)` takes the encoder's maps.

    A ModuleList, so its blocks keep the checkpoint keys `decoder.<i>.conv...` that
    unet_resnet has always had. `channels` and `reductions` describe the encoder's maps,
    shallowest first; `decoder_channels` holds one width per block.
    """

    def __init__(
        self,
        channels: Sequence[int],
        reductions: Sequence[int],
        decoder_channels: Sequence[int],
        norm: str,
        encoder: str = "the encoder",
    ) -> None:
        steps = halvings(list(reductions), encoder)
        widths = check_decoder(decoder_channels, steps)
        where = {int(r): i for i, r in enumerate(reductions[:-1])}
        # Block i goes from 1/2**(steps - i) to 1/2**(steps - i - 1) of the input.
        self.skip_index = [where.get(2 ** (steps - i - 1), -1) for i in range(steps)]
        skips = [channels[j] if j >= 0 else 0 for j in self.skip_index]
        ins = [channels[-1], *widths[:-1]]
        super().__init__(DecoderBlock(i, s, o, norm) for i, s, o in zip(ins, skips, widths))
        self.out_channels = widths[-1]

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        y = features[-1]
        for block, index in zip(self, self.skip_index):
            y = block(y, features[index] if index >= 0 else None)
        return y


class EncoderUNet(SegmentationModel):
    """What unet_resnet and unet_timm share: `encoder` gives the feature maps, `decoder`
    (a UNetDecoder) climbs back to full size and `outc` gives the logits. Inputs are
    mirror-padded to `input_multiple` and the output is cropped back, so any size works."""

    encoder: nn.Module
    decoder: UNetDecoder
    outc: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        height, width = x.shape[-2:]
        features = self.encoder(pad_to_multiple(x, self.input_multiple))
        return self.outc(self.decoder(features))[..., :height, :width]
