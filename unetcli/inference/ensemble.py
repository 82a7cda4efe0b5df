"""Images -> probabilities for one model or for several averaged (a fold ensemble).

The predict pipeline runs whatever `predictor()` returns: one model with its cover mode and
TTA, or an `Ensemble`, whose members each run that same way on the same input batch and
whose probabilities are averaged. Every member's weights stay loaded; images flow through
the members in turn, so memory grows with the number of models only through their weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from unetcli.hardware import Runtime
from unetcli.inference.modes import cover
from unetcli.inference.options import InferenceOptions
from unetcli.inference.tta import with_tta
from unetcli.models.contract import SegmentationModel

Predictor = Callable[[torch.Tensor], torch.Tensor]


def model_predictor(
    model: SegmentationModel, runtime: Runtime, options: InferenceOptions
) -> Predictor:
    """One model, its cover mode and its TTA: transformed images -> probabilities (N, C, H, W)."""
    model.eval()

    def one_pass(images: torch.Tensor) -> torch.Tensor:
        return cover(model, images, runtime, options)

    return with_tta(one_pass, options.tta, options.tta_identity)


@dataclass(frozen=True)
class Ensemble:
    """Members (a model and its own inference options) whose probabilities are averaged.

    The members share one input: the same transformed images (the caller checks that their
    evaluation transforms and cover modes agree), so the mean is taken in model-input space,
    before the one resize back to the original size (a linear map, so it commutes).
    """

    members: Sequence[tuple[SegmentationModel, InferenceOptions]]

    def predictor(self, runtime: Runtime) -> Predictor:
        parts = [model_predictor(model, runtime, options) for model, options in self.members]
        if len(parts) == 1:
            return parts[0]

        def averaged(images: torch.Tensor) -> torch.Tensor:
            total = parts[0](images).float()
            for part in parts[1:]:
                total = total + part(images).float()
            return total / len(parts)

        return averaged


def predictor(
    model: SegmentationModel | Ensemble, runtime: Runtime, options: InferenceOptions
) -> Predictor:
    """What the pipeline runs for `model`: an ensemble brings its members' own options."""
    if isinstance(model, Ensemble):
        return model.predictor(runtime)
    return model_predictor(model, runtime, options)
