"""Rebuild a trained model and its dataset from a checkpoint alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unetcli.core.checkpoints import load_checkpoint
from unetcli.core.hardware import Runtime
from unetcli.datasets.base import Layout
from unetcli.datasets.layouts import build_layout
from unetcli.errors import UnetError
from unetcli.models.contract import SegmentationModel, build_model, without_pretrained


@dataclass(frozen=True)
class Restored:
    """One checkpoint, ready to predict: its model (eval mode, on the run's device), the
    training run's resolved config with the command's dataset overrides, and its layout."""

    checkpoint: Path
    config: DictConfig
    model: SegmentationModel
    layout: Layout
    epoch: int
    metrics: dict[str, float]


def rebuild_model(model_cfg: DictConfig, checkpoint: str | Path) -> SegmentationModel:
    """The checkpoint's model with fresh weights, without reading pretrained weight files.

    The checkpoint holds every weight, so a file the training run started from
    (model.encoder_weights, model.pretrained) is not read again: it is usually absent on
    the machine that predicts.
    """
    return build_model(
        without_pretrained(model_cfg), f"the model._target_ of checkpoint {checkpoint}"
    )


def with_dataset_overrides(trained: DictConfig, overrides: DictConfig | None) -> DictConfig:
    """The training config with the command's non-null `dataset.*` keys in place (e.g.
    dataset.root for the same data in another folder; it moves the layout too)."""
    given = {k: v for k, v in OmegaConf.to_container(overrides or {}).items() if v is not None}
    if "root" in given:
        given.setdefault("layout", {})["root"] = given["root"]
    trained.dataset = OmegaConf.merge(trained.dataset, given)
    return trained


def restore(
    checkpoint: str | Path, dataset_overrides: DictConfig | None, runtime: Runtime
) -> Restored:
    """Load `checkpoint`, rebuild its model in eval mode on `runtime` and its dataset layout."""
    state = load_checkpoint(str(checkpoint))
    config = with_dataset_overrides(OmegaConf.create(state["config"]), dataset_overrides)
    model = rebuild_model(config.model, checkpoint)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise UnetError(
            f"checkpoint {checkpoint} does not match its own model config: {err}"
        ) from err
    model = runtime.prepare_model(model).eval()
    return Restored(
        Path(checkpoint),
        config,
        model,
        build_layout(config.dataset),
        int(state["epoch"]),
        state.get("metrics", {}),
    )
