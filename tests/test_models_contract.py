"""The model contract, checked for every conf/model/*.yaml as `unet train` builds it.

Training and inference read only SegmentationModel's attributes (input_multiple,
output_margin, tile_size, min_input_size) and methods; a model whose declared
geometry disagrees with its forward pass would break overlap-tile or padding
silently. New YAML files are picked up by the glob, so a new architecture is
checked without editing this file. Channel widths are shrunk to keep the test
fast; depths, and so the geometry, are the YAML's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from unetcli.config.location import config_dir
from unetcli.errors import UnetError
from unetcli.models import SegmentationModel
from unetcli.models.contract import build_model

MODEL_NAMES = sorted(p.stem for p in (Path(config_dir()) / "model").glob("*.yaml"))
#: Channel lists shrunk to 4 per entry; their lengths (the depth) stay the YAML's.
CHANNEL_KEYS = ("widths", "decoder_channels")
IN_CHANNELS, NUM_CLASSES = 2, 3


def tiny_model(name: str) -> SegmentationModel:
    """conf/model/<name>.yaml composed with the train config, at 4 channels a level."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"model={name}",
                f"dataset.in_channels={IN_CHANNELS}",
                f"dataset.num_classes={NUM_CLASSES}",
            ],
        )
    for key in CHANNEL_KEYS:
        if key in cfg.model:
            cfg.model[key] = [4] * len(cfg.model[key])
    return build_model(cfg.model).eval()


def odd_at_least(size: int) -> int:
    return size if size % 2 else size + 1


class FirstConvInput:
    """Records the height and width that the first convolution of a forward pass sees.

    Equal to the model's input size exactly when the model did not pad it.
    """

    def __init__(self, model: nn.Module) -> None:
        self.size: tuple[int, ...] | None = None
        self._hooks = [
            module.register_forward_pre_hook(self._record)
            for module in model.modules()
            if isinstance(module, nn.Conv2d)
        ]

    def __enter__(self) -> FirstConvInput:
        return self

    def __exit__(self, *_exc: object) -> None:
        for hook in self._hooks:
            hook.remove()

    def _record(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if self.size is None:
            self.size = tuple(inputs[0].shape[-2:])

    def forward(self, model: nn.Module, height: int, width: int) -> torch.Tensor:
        self.size = None
        with torch.no_grad():
            return model(torch.randn(2, IN_CHANNELS, height, width))


@pytest.fixture(scope="module", params=MODEL_NAMES)
def model(request) -> SegmentationModel:
    return tiny_model(request.param)


def test_every_model_declares_a_consistent_geometry(model):
    assert isinstance(model, SegmentationModel)
    assert (model.in_channels, model.num_classes) == (IN_CHANNELS, NUM_CLASSES)
    assert model.input_multiple >= 1 and model.output_margin >= 0 and model.min_input_size >= 1
    if model.output_margin:  # predicted only by overlap-tile, which needs a tile
        assert model.tile_size is not None
    if model.tile_size is not None:
        assert model.valid_input_size(model.tile_size) == model.tile_size
        assert model.output_size(model.tile_size) > 0
    first = model.valid_input_size(model.min_input_size)
    assert first >= model.min_input_size and model.output_size(first) > 0
    # Valid sides repeat every input_multiple: overlap-tile steps its tiles by that grid.
    for size in (first, first + 1, 37, 53):
        valid = model.valid_input_size(size)
        assert valid >= size and model.valid_input_size(valid) == valid
        assert model.valid_input_size(valid + model.input_multiple) == valid + model.input_multiple


def test_odd_sizes_give_the_declared_output_and_valid_sizes_need_no_padding(model):
    height = odd_at_least(max(37, model.min_input_size))
    width = odd_at_least(max(53, height + 16))
    valid_h, valid_w = model.valid_input_size(height), model.valid_input_size(width)
    with FirstConvInput(model) as probe:
        odd = probe.forward(model, height, width)
        padded_to = probe.size
        out = probe.forward(model, valid_h, valid_w)
    m = model.output_margin
    assert odd.shape == (2, NUM_CLASSES, height - 2 * m, width - 2 * m)
    assert odd.shape[-2:] == (model.output_size(height), model.output_size(width))
    assert probe.size == (valid_h, valid_w)  # taken as it is
    assert out.shape[-2:] == (model.output_size(valid_h), model.output_size(valid_w))
    if (valid_h, valid_w) != (height, width):
        assert padded_to != (height, width)  # the odd size was padded inside the model


def test_inputs_the_model_cannot_take_are_user_errors(model):
    with pytest.raises(UnetError, match="dataset.in_channels"):
        model(torch.zeros(1, IN_CHANNELS + 1, 64, 64))
    if model.min_input_size > 1:
        small = model.min_input_size - 1
        with pytest.raises(UnetError, match=f"at least {model.min_input_size}x"):
            model(torch.zeros(1, IN_CHANNELS, small, small + 40))
