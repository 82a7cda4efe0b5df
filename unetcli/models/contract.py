"""What training and inference may assume of a model, stated once.

Every model in conf/model/ is a `SegmentationModel`. Training, the predict
modes and overlap-tile read these attributes and nothing else, so a new
architecture declares its geometry here instead of in five `getattr` calls.
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from unetcli.config.instantiate import build
from unetcli.errors import UnetError


class SegmentationModel(nn.Module):
    """Logits (N, num_classes, H', W') for images (N, in_channels, H, W).

    - `input_multiple`: sides that are multiples of this pass through without
      internal padding (2**depth for a U-Net). Models pad other sizes
      themselves; inference pads to it once, outside, to avoid doing it twice.
    - `output_margin`: pixels lost on each side (valid convolutions):
      H' = H - 2 * output_margin. 0 for padded networks.
    - `tile_size`: the model's natural input tile for overlap-tile prediction
      (572 for the 2015 paper's net); None for models that take whole images.
    - `min_input_size`: the smallest side the model takes.
    """

    input_multiple: int = 1
    output_margin: int = 0
    tile_size: int | None = None
    min_input_size: int = 1

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if int(in_channels) < 1:
            raise UnetError(f"model.in_channels must be at least 1, got {in_channels}")
        if int(num_classes) < 1:
            raise UnetError(f"model.num_classes must be at least 1, got {num_classes}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)

    def valid_input_size(self, size: int) -> int:
        """The smallest side >= size that the network takes without internal padding."""
        size = max(int(size), self.min_input_size)
        return math.ceil(size / self.input_multiple) * self.input_multiple

    def output_size(self, size: int) -> int:
        """The output side for an input side."""
        return int(size) - 2 * self.output_margin

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a UnetError naming the config key when `x` cannot be this model's input."""
        name = type(self).__name__
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise UnetError(
                f"{name} expects input of shape (batch, {self.in_channels}, height, width), "
                f"got {tuple(x.shape)}; set dataset.in_channels (which model.in_channels "
                "follows) to the images' channel count"
            )
        if min(x.shape[-2:]) < self.min_input_size:
            raise UnetError(
                f"{name} needs inputs of at least {self.min_input_size}x{self.min_input_size} "
                f"pixels, got {x.shape[-2]}x{x.shape[-1]}; raise dataset.image_size (or "
                "dataset.crop_size) or choose a shallower model (fewer model.widths)"
            )


def build_model(model_cfg: DictConfig, what: str = "model._target_") -> SegmentationModel:
    """The model `model_cfg` describes (`_target_` and its keys), checked to keep the contract."""
    model = build(model_cfg, "model")
    if not isinstance(model, SegmentationModel):
        raise UnetError(
            f"{what} builds a {type(model).__name__}, which is not a "
            "unetcli.models.SegmentationModel; training, predict and evaluate need one "
            "(subclass it and declare the model's geometry)"
        )
    return model


#: Keys that name weights a model starts from (unet_resnet, unet_timm), and their "none".
PRETRAINED_KEYS = {"encoder_weights": None, "pretrained": False}


def without_pretrained(model_cfg: DictConfig) -> DictConfig:
    """`model_cfg` with its pretrained weights switched off, for a model whose weights come
    from a checkpoint (resume, evaluate, predict, export) or do not matter (timing): the
    file or hub cache it started from is usually absent where it is used later."""
    off = {key: value for key, value in PRETRAINED_KEYS.items() if key in model_cfg}
    return OmegaConf.merge(model_cfg, off) if off else model_cfg
