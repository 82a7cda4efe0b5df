"""The model(s) a predict run applies: `checkpoint=` alone, or every member of `ensemble=`.

Each member is restored as a single checkpoint is (its own model and its own inference options
read from the same `predict.*` keys); the members must read their images the same way (the
same channels, evaluation transform and cover mode), since their probabilities are averaged
image by image on one shared input before the single resize back to the original size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
from omegaconf import DictConfig, OmegaConf

from unetcli.ensembles.members import resolve_members
from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.inference.ensemble import Ensemble
from unetcli.inference.options import InferenceOptions, inference_options, inference_transform
from unetcli.inference.restore import Restored, restore
from unetcli.models.contract import SegmentationModel


@dataclass(frozen=True)
class Source:
    """A checkpoint to restore and how the summary names it."""

    checkpoint: Path
    label: str


@dataclass
class Models:
    """What predict runs (`model`: one model or an Ensemble) and what feeds it.

    `restored` and `options` are the first member's: its dataset layout lists the test images
    and its evaluation transform prepares them, which every member shares.
    """

    model: SegmentationModel | Ensemble
    restored: Restored
    options: InferenceOptions
    sources: list[Source]


def sources_of(cfg: DictConfig) -> list[Source]:
    """The checkpoints named by `checkpoint=` or `ensemble=` (exactly one of the two)."""
    has_checkpoint = not OmegaConf.is_missing(cfg, "checkpoint") and bool(cfg.checkpoint)
    if cfg.ensemble is None or cfg.ensemble == "" or cfg.ensemble == []:
        if not has_checkpoint:
            raise UnetError(
                "this command needs checkpoint=PATH (one model, e.g. outputs/train/<run>/"
                "checkpoints/best.pt) or ensemble=<sweep folder or [a.pt,b.pt]> (several, averaged)"
            )
        return [Source(Path(str(cfg.checkpoint)), str(cfg.checkpoint))]
    if has_checkpoint:
        raise UnetError(
            f"both checkpoint={cfg.checkpoint} and ensemble= are set; give one: checkpoint= "
            "predicts with one model, ensemble= averages several (list that checkpoint in it)"
        )
    return [Source(m.checkpoint, _label(m.checkpoint, m.fold, m.folds)) for m in
            resolve_members(cfg.ensemble)]  # fmt: skip


def _label(path: Path, fold: int | None, folds: int | None) -> str:
    if fold is not None:
        return f"{path} (fold {fold} of {folds})"
    return f"{path} (all images)" if folds else str(path)


def restore_models(
    cfg: DictConfig, sources: list[Source], runtime: Runtime, threshold: float
) -> Models:
    """Restore every source with its options; several become an Ensemble after the checks."""
    restored, options = [], []
    for source in sources:
        one = restore(OmegaConf.create({"checkpoint": str(source.checkpoint),
                                        "dataset": cfg.get("dataset")}), runtime)  # fmt: skip
        restored.append(one)
        options.append(inference_options(cfg.predict, "predict", one.config, threshold))
    if len(sources) == 1:
        return Models(restored[0].model, restored[0], options[0], sources)
    for i in range(1, len(sources)):
        _check_same_input(sources[0], restored[0], options[0], sources[i], restored[i], options[i])
    ensemble = Ensemble([(r.model, o) for r, o in zip(restored, options)])
    return Models(ensemble, restored[0], options[0], sources)


def _input_of(restored: Restored, options: InferenceOptions) -> dict:
    transform = inference_transform(restored.config, options.mode)
    return {
        "channels": int(restored.config.dataset.in_channels),
        "mode": options.mode,
        "window": options.window,
        "transform": json.loads(json.dumps(A.to_dict(transform), default=str)),
    }


def _check_same_input(
    first: Source,
    restored_first: Restored,
    options_first: InferenceOptions,
    other: Source,
    restored_other: Restored,
    options_other: InferenceOptions,
) -> None:
    """Members average on one shared input: the same channels, transform and cover mode."""
    a, b = _input_of(restored_first, options_first), _input_of(restored_other, options_other)
    differ = [key for key in a if a[key] != b[key]]
    if not differ:
        return
    key = differ[0]
    what = {
        "channels": "dataset.in_channels",
        "mode": "the predict mode (predict.mode=auto follows each dataset.image_size)",
        "window": "the sliding window (dataset.crop_size)",
        "transform": "the evaluation transform (dataset.image_size, mean/std, augmentation val:)",
    }[key]
    raise UnetError(
        f"the ensemble's members read images differently: {what} is {_short(a[key])} for "
        f"{first.checkpoint} but {_short(b[key])} for {other.checkpoint}. An ensemble averages "
        "its members' probabilities image by image on one shared input, so every member must "
        "have been trained with the same channels, dataset.image_size and evaluation "
        "transform; predict the odd one out on its own, or retrain it to match."
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
