"""The model catalogue: every conf/model/*.yaml builds, runs forward and backward on odd
sizes, and has the parameter count its YAML comment states; unet options; unet_resnet's
torchvision-compatible encoder weights."""

from __future__ import annotations

import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from tests.conftest import REPO
from unetcli.errors import UnetError
from unetcli.models import UNet, UNetOriginal, UNetResNet
from unetcli.models.contract import build_model

MODEL_FILES = sorted((REPO / "conf" / "model").glob("*.yaml"))
COUNT = re.compile(r"Parameters \(RGB input, 1 class\): ([\d.]+) M")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_parameter_count_matches_the_yaml_comment(path):
    stated = COUNT.search(path.read_text())
    assert stated, f"{path.name} has no 'Parameters (RGB input, 1 class): N M' comment"
    cfg = compose_train(f"model={path.stem}")  # the synthetic set: RGB, one class
    assert (cfg.dataset.in_channels, cfg.dataset.num_classes) == (3, 1)
    model = instantiate(cfg.model)
    assert n_params(model) / 1e6 == pytest.approx(float(stated.group(1)), abs=0.006)


# Tiny versions of each model, each with an odd input size.
TINY = {
    "unet_batch_dropout": lambda: UNet(3, 1, [4, 8, 16], norm="batch", dropout=0.3),
    "unet_instance": lambda: UNet(3, 2, [4, 8, 16], norm="instance"),
    "unet_group_bilinear": lambda: UNet(3, 1, [4, 8, 16], "bilinear", norm="group"),
    "unet_none": lambda: UNet(1, 3, [4, 8, 16], norm="none"),
    "unet1024_shape": lambda: UNet(3, 1, [2, 2, 2, 2, 4, 4, 4, 4]),
    "unet_original": lambda: UNetOriginal(3, 1, [4, 8, 16]),
    "unet_original_2class": lambda: UNetOriginal(1, 2, [4, 8, 16], norm="batch"),
    "unet_resnet18": lambda: UNetResNet(3, 1, "resnet18", decoder_channels=[16, 8, 8, 4, 4]),
    "unet_resnet34_grey": lambda: UNetResNet(1, 2, "resnet34", decoder_channels=[8, 8, 4, 4, 4]),
}


@pytest.mark.parametrize("name", list(TINY))
def test_forward_and_backward_on_an_odd_size(name):
    torch.manual_seed(0)
    model = TINY[name]()
    height, width = 61, 83
    x = torch.randn(2, model.in_channels, height, width)
    out = model(x)
    margin = model.output_margin
    assert out.shape == (2, model.num_classes, height - 2 * margin, width - 2 * margin)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_norm_option_picks_the_layer_and_none_adds_conv_biases():
    def kinds(model):
        return {type(m).__name__ for m in model.modules()}

    assert "InstanceNorm2d" in kinds(UNet(3, 1, [4, 8], norm="instance"))
    assert "GroupNorm" in kinds(UNet(3, 1, [4, 8], norm="group"))
    bare = UNet(3, 1, [4, 8], norm="none")
    assert not kinds(bare) & {"BatchNorm2d", "InstanceNorm2d", "GroupNorm"}
    assert bare.inc.block[0].bias is not None
    assert UNet(3, 1, [4, 8]).inc.block[0].bias is None
    with pytest.raises(UnetError, match="model.norm must be one of"):
        UNet(3, 1, [4, 8], norm="layer")


def test_dropout_is_random_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = UNet(3, 1, [4, 8, 16], dropout=0.5)
    x = torch.randn(1, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    # Without dropout the training-mode passes agree (batch norm alone is deterministic).
    plain = UNet(3, 1, [4, 8, 16]).train()
    assert torch.equal(plain(x), plain(x))


def test_unet1024_reaches_an_8x8_bottleneck_at_1024():
    cfg = compose_train("model=unet1024")
    assert cfg.model.widths == [8, 16, 32, 64, 128, 256, 512, 1024]
    cfg.model.widths = [2] * len(cfg.model.widths)  # the same eight levels, 2 channels each
    model = build_model(cfg.model).eval()
    smallest: list[tuple[int, int]] = []

    def record(_module, _inputs, output):
        smallest.append(tuple(output.shape[-2:]))

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(record)
    # The full 1024x1024: at 2 channels a level one forward pass takes about a second.
    with torch.no_grad():
        out = model(torch.randn(1, 3, 1024, 1024))
    assert out.shape == (1, 1, 1024, 1024)
    assert min(smallest) == (8, 8)  # the bottleneck: seven halvings of 1024


def test_unet_original_maps_572_to_388_with_a_margin_of_92():
    model = UNetOriginal(1, 2, [2, 4, 8, 16, 32]).eval()  # the paper's depth, narrow
    assert model.output_margin == 92 and model.tile_size == 572
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    with pytest.raises(UnetError, match="at least 188x188"):
        model(torch.zeros(1, 1, 150, 300))


# --- unet_resnet: torchvision's key names -------------------------------------------------


def torchvision_resnet_shapes(blocks: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision.models.resnet18/34().state_dict(), written out from
    torchvision's architecture (BasicBlock, downsample = Sequential(conv1x1, BN))."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    in_planes = 64
    for i, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        for b in range(count):
            prefix = f"layer{i}.{b}"
            cin = in_planes if b == 0 else planes
            shapes[f"{prefix}.conv1.weight"] = (planes, cin, 3, 3)
            bn(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn2", planes)
            if b == 0 and i > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, cin, 1, 1)
                bn(f"{prefix}.downsample.1", planes)
        in_planes = planes
    shapes["fc.weight"] = (1000, 512)
    shapes["fc.bias"] = (1000,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        k: torch.randint(0, 100, s, generator=gen)
        if k.endswith("tracked")
        else torch.randn(s, generator=gen)
        for k, s in shapes.items()
    }


@pytest.mark.parametrize(
    ("encoder", "blocks", "keys", "params"),
    # torchvision's published figures: 122/218 state_dict entries, 11.69 M/21.80 M parameters.
    [("resnet18", (2, 2, 2, 2), 122, 11_689_512), ("resnet34", (3, 4, 6, 3), 218, 21_797_672)],
)
def test_torchvision_state_dict_loads_into_the_encoder(tmp_path, encoder, blocks, keys, params):
    shapes = torchvision_resnet_shapes(blocks)
    assert len(shapes) == keys
    learnable = [
        s for k, s in shapes.items() if not k.split(".")[-1].startswith(("running", "num"))
    ]
    assert sum(torch.Size(s).numel() for s in learnable) == params
    state = random_state(shapes)
    path = tmp_path / f"{encoder}.pth"
    torch.save(state, path)
    model = UNetResNet(3, 1, encoder, encoder_weights=str(path))
    loaded = model.encoder.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_grey_input_spreads_the_rgb_filters(tmp_path):
    state = random_state(torchvision_resnet_shapes((2, 2, 2, 2)))
    torch.save(state, tmp_path / "r18.pth")
    model = UNetResNet(1, 1, "resnet18", encoder_weights=str(tmp_path / "r18.pth"))
    expected = state["conv1.weight"][:, :1] * 3
    assert torch.allclose(model.encoder.conv1.weight, expected)


def test_mismatched_weights_give_a_clear_message(tmp_path):
    state = random_state(torchvision_resnet_shapes((2, 2, 2, 2)))  # resnet18 weights
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(UnetError, match=r"does not match a torchvision resnet34: \d+ keys missing"):
        UNetResNet(3, 1, "resnet34", encoder_weights=str(tmp_path / "r18.pth"))
    renamed = {f"backbone.{k}": v for k, v in state.items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    cfg = compose_train(
        "model=unet_resnet",
        "model.encoder=resnet18",
        f"model.encoder_weights={tmp_path / 'renamed.pth'}",
    )
    # Through the config path as `unet train` builds it: the message names the key.
    with pytest.raises(UnetError, match=r"model.encoder_weights=.*unexpected keys \(e.g. backbone"):
        build_model(cfg.model)
    with pytest.raises(UnetError, match="does not exist"):
        UNetResNet(3, 1, "resnet18", encoder_weights=str(tmp_path / "missing.pth"))
