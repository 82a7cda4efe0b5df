"""U-Net with any timm backbone as its encoder (model=unet_timm, model.encoder=<timm name>)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unetcli.errors import UnetError
from unetcli.models.decoder import EncoderUNet, UNetDecoder
from unetcli.models.pretrained import wants_pretrained
from unetcli.models.timm_encoder import (
    build_encoder,
    check_depth,
    check_rate,
    wake_residual_blocks,
)
from unetcli.models.unet_parts import OutConv


class UNetTimm(EncoderUNet):
    """Encoder: `timm.create_model(encoder, features_only=True)`; decoder: unetcli's own.

    The encoder's feature maps (timm's `feature_info`: channels and reductions) feed the
    skips of the shared U-Net decoder (unetcli.models.decoder), one block per halving, up
    to full size. `input_multiple` is the encoder's deepest reduction (32 for ResNet,
    EfficientNet, ConvNeXt, RegNet, MobileNetV3): inputs are mirror-padded to a multiple of
    it and the output is cropped back, so any size works.

    `encoder_depth` keeps the first maps only (timm's out_indices; the deeper stages are not
    built) and `drop_path_rate` is timm's stochastic depth in the encoder's blocks.
    `zero_init_last` (random weights only) keeps timm's zero scale on each residual block's
    last norm; false sets it to one, which a short run from scratch needs to fit.

    `pretrained`: false (random weights), true (timm's default weights for the encoder from
    the Hugging Face hub cache) or the path of a .safetensors/.pth state_dict. A checkpoint
    holds every weight, so a restored model is built with pretrained=false.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        encoder: str = "resnet34",
        pretrained: Any = False,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        norm: str = "batch",
        encoder_depth: int | None = None,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
    ) -> None:
        super().__init__(in_channels, num_classes)
        self.encoder_name = str(encoder)
        options: dict[str, Any] = {}
        if encoder_depth is not None:
            options["out_indices"] = tuple(range(check_depth(encoder_depth)))
        if check_rate(drop_path_rate):
            options["drop_path_rate"] = float(drop_path_rate)
        self.encoder = build_encoder(self.encoder_name, pretrained, self.in_channels, options)
        if not isinstance(zero_init_last, bool):
            raise UnetError(f"model.zero_init_last must be true or false, got {zero_init_last}")
        if not zero_init_last and not wants_pretrained(pretrained):
            wake_residual_blocks(self.encoder)
        info = self.encoder.feature_info
        reductions = [int(r) for r in info.reduction()]
        self.decoder = UNetDecoder(
            info.channels(), reductions, decoder_channels, norm, self.encoder_name
        )
        self.input_multiple = reductions[-1]
        self.outc = OutConv(self.decoder.out_channels, self.num_classes)
