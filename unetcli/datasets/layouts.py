"""The dataset's layout object from its config node (`dataset.layout._target_`)."""

from __future__ import annotations

from omegaconf import DictConfig

from unetcli.config.instantiate import build
from unetcli.datasets.base import Layout
from unetcli.errors import UnetError


def build_layout(dataset_cfg: DictConfig) -> Layout:
    """The dataset's layout object, prepared (generated or checked) for use."""
    layout = build(dataset_cfg.layout, "dataset.layout")
    if not isinstance(layout, Layout):
        raise UnetError(
            f"dataset.layout._target_ must build a unetcli.datasets.Layout, got {type(layout)}"
        )
    layout.prepare()
    return layout
