"""U-Net with a ResNet-18/34 encoder (optionally ImageNet weights the user supplies)."""

from __future__ import annotations

from collections.abc import Sequence

from unetcli.models.decoder import EncoderUNet, UNetDecoder
from unetcli.models.resnet import STAGE_CHANNELS, ResNetEncoder
from unetcli.models.unet_parts import OutConv

#: Reductions of the stem and the four stages (1/2 to 1/32 of the input).
STAGE_REDUCTIONS = (2, 4, 8, 16, 32)


class UNetResNet(EncoderUNet):
    """Encoder: torchvision-named ResNet; decoder: five up-sampling blocks to full size.

    The encoder's stem and four stages (1/2 to 1/32 of the input) feed the
    decoder's skips (unetcli.models.decoder, shared with unet_timm); the last block
    goes from 1/2 to full size without a skip. Inputs are mirror-padded to a multiple
    of 32 (`input_multiple`: the encoder halves the side five times) and the output
    cropped back, so any size works. `encoder_weights` is the path of a torchvision
    ResNet state_dict (ImageNet weights expect the ImageNet mean and std in
    dataset.mean / dataset.std); null starts from random weights.

    Kept beside unet_timm as the encoder that needs no extra package: torch alone builds
    it, whatever torch build a user has, and its checkpoints stay readable as they are.
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
        self.encoder = ResNetEncoder(encoder, self.in_channels)
        self.decoder = UNetDecoder(STAGE_CHANNELS, STAGE_REDUCTIONS, decoder_channels, norm)
        if encoder_weights:
            self.encoder.load_torchvision(encoder_weights)
        self.outc = OutConv(self.decoder.out_channels, self.num_classes)
