"""timm backbones as U-Net encoders: import, choice, pretrained weights, input statistics.

timm is an optional extra (`pip install "unetcli[encoders]"`): it is imported here, when a
model asks for it, and its absence is one paragraph with the install line. An encoder is
`timm.create_model(name, features_only=True, in_chans=C)`; pretrained weights are read by
unetcli.models.pretrained (never code-running pickles) and handed to timm as a state_dict,
so timm still adapts the first convolution to C input channels and drops the classifier.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from unetcli.errors import UnetError
from unetcli.models.pretrained import hub_weights, read_weights, url_weights, wants_pretrained

INSTALL = 'pip install "unetcli[encoders]"'


def import_timm() -> ModuleType:
    """The timm module, or one paragraph saying how to install it."""
    try:
        import timm
    except (ImportError, RuntimeError, OSError) as err:  # a torchvision of another build
        first = (str(err).strip().splitlines() or [""])[0]
        raise UnetError(
            f"model=unet_timm needs the timm package, which cannot be imported here "
            f"({type(err).__name__}: {first}). Install the encoders extra: {INSTALL}. timm "
            "imports torchvision, whose build must match torch's (on a CPU: pip install "
            "torch==2.14.1 torchvision==0.29.1). model=unet_resnet needs neither."
        ) from err
    return timm


@contextlib.contextmanager
def quiet_timm() -> Iterator[None]:
    """timm logs each pretrained load at INFO, which Hydra's logging would print."""
    logger = logging.getLogger("timm")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def encoder_config(timm: ModuleType, name: str) -> Any:
    """timm's pretrained config of `name` (None if it has none), after checking that timm
    knows the name and that the network takes inputs of any size."""
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnetError(
            f"model.encoder={name} is not a timm model{hint}. List the names with python -c "
            "\"import timm; print(timm.list_models('resnet*'))\"; docs: Encoders lists the "
            "tested families."
        )
    try:
        config = timm.get_pretrained_cfg(name)
    except RuntimeError as err:  # an architecture with a tag it does not have
        tags = timm.list_pretrained(f"{name.split('.')[0]}.*")
        raise UnetError(
            f"model.encoder={name}: {err} Its pretrained tags are: {', '.join(tags) or 'none'}."
        ) from err
    if config is not None and config.fixed_input_size:
        raise UnetError(
            f"model.encoder={name} takes one fixed input size (its attention windows or "
            "position embeddings are built for it), so it cannot serve a U-Net that takes "
            "images of any size. Choose a convolutional family (resnet*, efficientnet*, "
            "convnext*, regnet*, mobilenetv3*; docs: Encoders)."
        )
    return config


def weights_file(name: str, pretrained: Any, config: Any) -> Path:
    """The file model.pretrained names: timm's own from the hub cache (true), or a path."""
    if str(pretrained).strip().lower() != "true":
        return Path(str(pretrained)).expanduser()
    hub_id = getattr(config, "hf_hub_id", None)
    if hub_id:
        return hub_weights(name, hub_id, getattr(config, "hf_hub_filename", None))
    url = getattr(config, "url", None)
    if url:
        raise url_weights(name, url)
    raise UnetError(
        f"timm has no pretrained weights for model.encoder={name}; set model.pretrained=false "
        "(random weights), pass model.pretrained=PATH, or choose an encoder with weights "
        "(python -c \"import timm; print(timm.list_pretrained('resnet*'))\")."
    )


def check_depth(depth: Any) -> int:
    """model.encoder_depth as a count of feature maps, or one paragraph naming the key."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UnetError(
            f"model.encoder_depth={depth} is not a count of encoder stages: give a whole "
            "number from 1 to the encoder's count of feature maps (five for most tested "
            "families, four for ConvNeXt), or null for all of them."
        )
    return depth


def check_rate(rate: Any) -> float:
    """model.drop_path_rate as a probability below 1, or one paragraph naming the key."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise UnetError(
            f"model.drop_path_rate={rate} is not a chance of skipping a block: give a "
            "number from 0 (off) up to, not including, 1; 0.1 to 0.2 is usual."
        )
    return float(rate)


def build_encoder(
    name: str, pretrained: Any, in_channels: int, options: dict[str, Any] | None = None
) -> nn.Module:
    """timm's `name` as a features-only encoder for `in_channels`, with its pretrained weights
    (model.pretrained: true, false or a path) loaded and checked to have all arrived.

    `options` go to timm.create_model as they are (out_indices, drop_path_rate).
    """
    timm = import_timm()
    config = encoder_config(timm, str(name))
    kwargs: dict[str, Any] = {"features_only": True, "in_chans": int(in_channels)}
    kwargs |= options or {}
    path, state = None, None
    if wants_pretrained(pretrained):
        path = weights_file(name, pretrained, config)
        state = read_weights(path)
        kwargs |= {"pretrained": True, "pretrained_cfg_overlay": {"state_dict": dict(state)}}
    try:
        with quiet_timm():
            encoder = timm.create_model(name, **kwargs)
    except IndexError as err:  # out_indices past the last stage
        depth = len(kwargs.get("out_indices", ()))
        raise UnetError(
            f"model.encoder_depth={depth} asks timm's {name} for more feature maps than it "
            "has; give a smaller depth (at most five for the tested families) or null."
        ) from err
    except (RuntimeError, ValueError, TypeError, KeyError, AssertionError) as err:
        first = (str(err).strip().splitlines() or [""])[0]
        fit = f" or the weights of model.pretrained={path} do not fit it" if path else ""
        raise UnetError(
            f"timm cannot build model.encoder={name} as a U-Net encoder{fit}: {first}"
        ) from err
    if state is not None:
        check_loaded(encoder, state, name, path)
    return encoder


def wake_residual_blocks(encoder: nn.Module) -> None:
    """Set to one the norm scales that timm's `zero_init_last` starts at zero.

    timm starts each residual block's last norm scale at zero, so that every block begins as
    the identity: a habit of long SGD training on ImageNet. With Adam at 1e-3 such a scale
    grows by about the learning rate per step, so from random weights the residual branches
    stay nearly off for hundreds of steps and a short run under-fits (docs: Encoders).
    """
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    for module in encoder.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, norms) and weight is not None and not weight.detach().any():
            nn.init.ones_(weight)


def check_loaded(encoder: nn.Module, state: dict, name: str, path: Path) -> None:
    """Refuse a weight file that left some of the encoder's tensors at random values.

    timm loads a features-only encoder leniently (the classifier may be absent); here every
    encoder tensor must have come from the file. Keys are compared with "_" and "."
    alike: the features-only wrapper names `stages.0` `stages_0`.
    """
    given = {key.replace("_", "."): value for key, value in state.items()}
    own = encoder.state_dict()
    missing = [key for key in own if key.replace("_", ".") not in given]
    if missing:
        raise UnetError(
            f"model.pretrained={path} does not hold the weights of timm's {name}: "
            f"{len(missing)} of the encoder's {len(own)} tensors are not in it (e.g. "
            f"{', '.join(missing[:3])}). The file must be a state_dict of that architecture "
            "under timm's names (a timm model's state_dict(), or the hub repository's "
            "model.safetensors); set model.encoder to the network it came from."
        )


def encoder_stats(name: str, channels: int) -> tuple[list[float], list[float]] | None:
    """The mean and std (0..1 units) the encoder's pretrained weights expect, per input
    channel, or None when timm states none.

    Channels follow timm's first-convolution adaptation: one grey channel takes the average
    of the RGB figures; more than three repeat R, G, B in turn.
    """
    config = encoder_config(import_timm(), str(name))
    if config is None or not config.mean or not config.std:
        return None
    mean, std = [float(v) for v in config.mean], [float(v) for v in config.std]
    if channels == 1 and len(mean) == 3:
        return [sum(mean) / 3], [sum(std) / 3]
    index = [i % len(mean) for i in range(channels)]
    return [mean[i] for i in index], [std[i] for i in index]
