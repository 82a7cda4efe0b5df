"""Rebuild a trained model and its dataset from a checkpoint alone."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from unetcli.build import build_layout, build_model
from unetcli.checkpoints import load_checkpoint
from unetcli.datasets.base import Layout
from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.models.contract import SegmentationModel


@dataclass
class Restored:
    config: DictConfig  # the training run's resolved config, with dataset overrides applied
    model: SegmentationModel
    layout: Layout
    epoch: int
    metrics: dict[str, float]


def rebuild_model(model_cfg: DictConfig, checkpoint: str) -> SegmentationModel:
    """The checkpoint's model with fresh weights, without reading pretrained weight files.

    The checkpoint holds every weight, so a file the training run started from
    (model.encoder_weights) is not read again: it is usually absent on the
    machine that predicts.
    """
    if "encoder_weights" in model_cfg:
        model_cfg = OmegaConf.merge(model_cfg, {"encoder_weights": None})
    model = build_model(model_cfg)
    if not isinstance(model, SegmentationModel):
        raise UnetError(
            f"the model._target_ of checkpoint {checkpoint} builds a {type(model).__name__}, "
            "which is not a unetcli.models.SegmentationModel; predict and evaluate need one "
            "(subclass it and declare the model's geometry)"
        )
    return model


def restore(cfg: DictConfig, runtime: Runtime) -> Restored:
    """Load the command's `checkpoint`, rebuild its model in eval mode and its dataset layout.

    Keys set (non-null) in the command's `dataset` node replace the
    checkpoint's own dataset config, e.g. dataset.root for the same data in
    another folder.
    """
    checkpoint = None if OmegaConf.is_missing(cfg, "checkpoint") else cfg.checkpoint
    dataset_overrides = cfg.get("dataset")
    if not checkpoint:
        raise UnetError(
            "this command needs checkpoint=PATH, e.g. "
            "checkpoint=outputs/train/<run>/checkpoints/best.pt"
        )
    state = load_checkpoint(str(checkpoint))
    cfg = OmegaConf.create(state["config"])
    overrides = {
        k: v for k, v in OmegaConf.to_container(dataset_overrides or {}).items() if v is not None
    }
    if "root" in overrides:
        overrides.setdefault("layout", {})["root"] = overrides["root"]
    cfg.dataset = OmegaConf.merge(cfg.dataset, overrides)
    model = rebuild_model(cfg.model, checkpoint)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise UnetError(
            f"checkpoint {checkpoint} does not match its own model config: {err}"
        ) from err
    model = runtime.prepare_model(model).eval()
    return Restored(
        cfg, model, build_layout(cfg.dataset), int(state["epoch"]), state.get("metrics", {})
    )
