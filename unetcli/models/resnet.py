"""ResNet-18 and ResNet-34 in plain torch, with torchvision's parameter names.

torchvision is not needed: the layers below
carry exactly the names of torchvision.models.resnet18/34 (conv1, bn1,
layer1.0.conv1, layer2.0.downsample.0, ...), so an ImageNet state_dict saved
with `torch.save(torchvision.models.resnet34(weights="DEFAULT").state_dict(), PATH)`
on any machine loads here unchanged. The classifier (fc) is left out.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from unetcli.errors import UnetError
from unetcli.models.pretrained import read_weights

#: Residual blocks per stage.
BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
#: Channels of the stem and of each stage's output.
STAGE_CHANNELS = (64, 64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """The ResNet trunk; `forward` returns the five feature maps a U-Net decoder needs.

    Feature maps: the stem (64 channels, 1/2 size), then layer1..layer4 (64,
    128, 256, 512 channels at 1/4, 1/8, 1/16, 1/32 of the input).
    """

    def __init__(self, name: str = "resnet34", in_channels: int = 3) -> None:
        super().__init__()
        if name not in BLOCKS:
            raise UnetError(
                f"model.encoder must be one of {', '.join(BLOCKS)}, not {name!r}; "
                "set model.encoder=resnet34 (or resnet18)"
            )
        self.name = name
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for i, (blocks, out) in enumerate(zip(BLOCKS[name], STAGE_CHANNELS[1:]), start=1):
            stride = 1 if i == 1 else 2
            layers = [BasicBlock(channels, out, stride)]
            layers += [BasicBlock(out, out) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layers))
            channels = out
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [stem, f1, f2, f3, f4]

    def load_torchvision(self, path: str | Path) -> None:
        """Load a torchvision ResNet state_dict from `path`; the fc keys are ignored.

        With in_channels other than 3 the RGB filters of conv1 are spread over
        the input channels (channel i takes RGB filter i mod 3, rescaled by
        3 / in_channels), the usual way to reuse ImageNet weights on grey images.
        """
        path = Path(path)
        state = read_state_dict(path, self.name)
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
        own = self.state_dict()
        weight = state.get("conv1.weight")
        if (
            isinstance(weight, torch.Tensor)
            and weight.ndim == 4
            and weight.shape[1] == 3
            and self.in_channels != 3
        ):
            index = torch.arange(self.in_channels) % 3
            state["conv1.weight"] = weight[:, index] * (3 / self.in_channels)
        for key in own:  # files saved before torch 0.4.1 lack these counters
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros((), dtype=torch.long)
        problems = mismatches(state, own)
        if problems:
            raise UnetError(
                f"model.encoder_weights={path} does not match a torchvision {self.name}: "
                f"{'; '.join(problems)}. The file must be the state_dict of "
                f"torchvision.models.{self.name} (set model.encoder=resnet18 or resnet34 to "
                "the network it came from)."
            )
        self.load_state_dict(state)


def read_state_dict(path: Path, name: str) -> dict:
    """The state_dict in `path` (read as unetcli.models.pretrained reads any weight file:
    unwrapped, never code-running), or a UnetError why not."""
    if not path.is_file():
        raise UnetError(
            f"model.encoder_weights={path} does not exist. Save ImageNet weights on a "
            f"machine with torchvision: torch.save(torchvision.models.{name}"
            f'(weights="DEFAULT").state_dict(), "{path.name}") and copy the file here, '
            "or set model.encoder_weights=null to start from random weights."
        )
    return read_weights(path, "model.encoder_weights")


def mismatches(state: dict, own: dict) -> list[str]:
    """Missing, unexpected and wrongly shaped keys of `state` against `own`, a phrase each."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} keys missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} keys of another shape (e.g. {wrong[0]})")
    return problems
