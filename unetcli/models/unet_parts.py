"""The U-Net's building blocks, small enough to read at a glance."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from unetcli.core.spatial import center_crop
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel

NORMS = ("batch", "instance", "group", "none")
UPSAMPLINGS = ("transpose", "bilinear")


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
    raise UnetError(
        f"model.norm must be one of {', '.join(NORMS)}, not {kind!r}; set model.norm=batch "
        "(or another of these) in the command line or the model's YAML"
    )


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
            raise UnetError(
                f"model.upsampling must be one of {', '.join(UPSAMPLINGS)}, not {mode!r}; "
                "set model.upsampling=transpose (learned) or bilinear"
            )
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


def check_architecture(widths: Sequence[int], dropout: float) -> list[int]:
    """Validate the YAML's widths and dropout before any layer is built; return widths as a list.

    Checked here, once for both U-Nets, so that a typo in the YAML is one
    sentence naming the key rather than a shape error deep inside torch.
    """
    widths = list(widths)
    if len(widths) < 2:
        raise UnetError(
            f"model.widths needs at least two levels (channels per level, the last being the "
            f"bottleneck), got {widths}; e.g. model.widths=[64,128]"
        )
    if not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise UnetError(f"model.widths must be positive whole numbers of channels, got {widths}")
    if not 0 <= dropout < 1:
        raise UnetError(f"model.dropout must be in [0, 1), got {dropout}; 0 turns dropout off")
    return widths


class UNetLevels(SegmentationModel):
    """The levels both U-Nets share: contracting path, expanding path, skips, dropout.

    `padding` 1 gives the padded U-Net, 0 the paper's valid convolutions. The
    layers keep the names inc/downs/ups/outc/dropout, which are the
    checkpoints' keys. Subclasses pad the input and crop the result; `levels`
    runs an input the network takes as it is.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: Sequence[int],
        upsampling: str,
        norm: str,
        dropout: float,
        padding: int,
    ) -> None:
        super().__init__(in_channels, num_classes)
        widths = check_architecture(widths, dropout)
        self.depth = len(widths) - 1
        #: Every pooling halves the side: sides that are multiples of 2**depth align.
        self.input_multiple = 2**self.depth
        self.inc = DoubleConv(self.in_channels, widths[0], norm, padding)
        self.downs = nn.ModuleList(
            Down(a, b, norm, padding) for a, b in zip(widths[:-1], widths[1:])
        )
        self.ups = nn.ModuleList(
            Up(b, a, upsampling, norm, padding)
            for a, b in zip(reversed(widths[:-1]), reversed(widths[1:]))
        )
        self.outc = OutConv(widths[0], self.num_classes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for an input whose sides the pooling takes without padding."""
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
        return self.outc(y)
