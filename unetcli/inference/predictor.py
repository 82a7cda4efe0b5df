"""What turns images into probabilities: one checkpoint, or the members of an ensemble averaged.

A `Predictor` is restored once, from `checkpoint=` or `ensemble=`, with the inference options
of the command (`predict.*`, `evaluate.*`, `export.*`, the same keys). Members are averaged
image by image on one shared input before the single resize back to the original size, so
they must read their images the same way (the same channels, evaluation transform and cover
mode); that is checked when they are restored. Every member's weights stay loaded; images
flow through the members in turn, so memory grows with the number of models only through
their weights.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from unetcli.core.hardware import Runtime
from unetcli.core.placement import restore_size
from unetcli.errors import UnetError
from unetcli.inference.dataset import prepare
from unetcli.inference.ensemble import resolve_members
from unetcli.inference.geometry import tracked
from unetcli.inference.modes import cover
from unetcli.inference.options import InferenceOptions, inference_options, inference_transform
from unetcli.inference.restore import Restored, restore
from unetcli.inference.transfer import to_host
from unetcli.inference.tta import with_tta


@dataclass(frozen=True)
class Source:
    """A checkpoint to restore and how the summary names it."""

    checkpoint: Path
    label: str


def sources_of(cfg: DictConfig) -> list[Source]:
    """The checkpoints named by `checkpoint=` or `ensemble=` (exactly one of the two)."""
    has_checkpoint = not OmegaConf.is_missing(cfg, "checkpoint") and bool(cfg.checkpoint)
    ensemble = cfg.get("ensemble")
    if ensemble is None or ensemble == "" or ensemble == []:
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
    return [Source(m.checkpoint, m.label) for m in resolve_members(ensemble)]


@dataclass(frozen=True)
class Predictor:
    """Restored members and the options they share; called on a batch of transformed images.

    The first member's dataset layout lists the test images and its evaluation transform
    prepares them, which every member shares.
    """

    members: tuple[Restored, ...]
    options: InferenceOptions
    runtime: Runtime

    @property
    def first(self) -> Restored:
        return self.members[0]

    @property
    def loader_batch(self) -> int:
        """Images per loader batch: one in sliding mode, where `batch_size` counts windows."""
        return 1 if self.options.mode == "sliding" else self.options.batch_size

    def transform(self) -> A.Compose:
        """The evaluation transform of the first member (every member's, checked)."""
        return inference_transform(self.first.config, self.options.mode)

    def with_options(self, **changes: object) -> Predictor:
        """The same members with some options changed (e.g. one TTA view alone)."""
        return dataclasses.replace(self, options=dataclasses.replace(self.options, **changes))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, C, h, w) float32 on the device, in model-input space.

        The batch is uploaded here, once: every TTA view and ensemble member computes on
        that copy on the device (`cover` passes it to `Runtime.to_input`, a no-op there).
        """
        options = self.options
        images = self.runtime.to_input(images)
        total: torch.Tensor | None = None
        for member in self.members:

            def one_pass(batch: torch.Tensor, model=member.model) -> torch.Tensor:
                return cover(model, batch, self.runtime, options)

            probs = with_tta(one_pass, options.tta, options.tta_identity)(images).float()
            total = probs if total is None else total + probs
        assert total is not None
        return total if len(self.members) == 1 else total / len(self.members)

    def image_probabilities(self, image: np.ndarray) -> np.ndarray:
        """One image in memory (H, W, C) -> probabilities (C, H, W) at its own size."""
        tensor, geometry = prepare(tracked(self.transform()), image)
        probs = to_host(self(tensor[None])[0], self.runtime)
        return restore_size(probs, geometry)


def load_predictor(
    sources: Sequence[Source], cfg: DictConfig, key: str, runtime: Runtime
) -> Predictor:
    """Restore every source and read the command's inference options (`cfg[key]`) for it.

    `cfg.dataset` may override the checkpoints' dataset (e.g. dataset.root).
    """
    members, options = [], []
    for source in sources:
        restored = restore(source.checkpoint, cfg.get("dataset"), runtime)
        members.append(restored)
        options.append(inference_options(cfg[key], key, restored.config))
    for i in range(1, len(members)):
        _check_same_input((members[0], options[0]), (members[i], options[i]))
    predictor = Predictor(tuple(members), options[0], runtime)
    _note_threshold_origin(predictor)
    return predictor


def _note_threshold_origin(predictor: Predictor) -> None:
    """Say so when the threshold file was swept for another checkpoint than this one."""
    evaluated = predictor.options.swept_for
    if not evaluated:
        return
    single = predictor.first.checkpoint if len(predictor.members) == 1 else None
    if single is None or Path(evaluated) != single.resolve():
        what = f"checkpoint {single}" if single else f"ensemble of {len(predictor.members)}"
        print(
            f"note: {predictor.options.threshold_from} was swept for {evaluated}, not for "
            f"this {what}"
        )


def _input_of(restored: Restored, options: InferenceOptions) -> dict:
    transform = inference_transform(restored.config, options.mode)
    return {
        "channels": int(restored.config.dataset.in_channels),
        "mode": options.mode,
        "window": options.window,
        "transform": json.loads(json.dumps(A.to_dict(transform), default=str)),
    }


_WHAT = {
    "channels": "dataset.in_channels",
    "mode": "the predict mode (predict.mode=auto follows each dataset.image_size)",
    "window": "the sliding window (dataset.crop_size)",
    "transform": "the evaluation transform (dataset.image_size, mean/std, augmentation val:)",
}


def _check_same_input(
    first: tuple[Restored, InferenceOptions], other: tuple[Restored, InferenceOptions]
) -> None:
    """Members average on one shared input: the same channels, transform and cover mode."""
    a, b = _input_of(*first), _input_of(*other)
    differ = [key for key in a if a[key] != b[key]]
    if not differ:
        return
    key = differ[0]
    raise UnetError(
        f"the ensemble's members read images differently: {_WHAT[key]} is {_short(a[key])} "
        f"for {first[0].checkpoint} but {_short(b[key])} for {other[0].checkpoint}. An "
        "ensemble averages its members' probabilities image by image on one shared input, so "
        "every member must have been trained with the same channels, dataset.image_size and "
        "evaluation transform; predict the odd one out on its own, or retrain it to match."
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
