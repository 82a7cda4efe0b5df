"""Model configs by name (conf/model/<name>.yaml), built for the planned dataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unetcli.config.location import config_dir
from unetcli.errors import UnetError


def model_config(name: str, in_channels: int, num_classes: int) -> DictConfig:
    """The composed model config (its `defaults` parents merged in), channels filled in."""
    path = Path(config_dir()) / "model" / f"{name}.yaml"
    if not path.is_file():
        raise UnetError(
            f"plan.models names {name}, which is not in conf/model/; "
            "use names such as unet or unet_small"
        )
    node = OmegaConf.load(path)
    parents = [p for p in node.pop("defaults", []) if p != "_self_"]
    merged = OmegaConf.merge(*[model_config(p, in_channels, num_classes) for p in parents], node)
    merged.in_channels, merged.num_classes = in_channels, num_classes
    return merged


def widths(cfg: DictConfig) -> str:
    """The first (widest-stage-one) width, for the reason lines: '64-wide'."""
    return f"{cfg.widths[0]}-wide" if "widths" in cfg else "its own width"
