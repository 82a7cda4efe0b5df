"""Out-of-fold evaluation: each fold's validation images predicted by that fold's model.

`unet evaluate ensemble=<sweep folder or list>` scores the union of the folds into one
report, through the same `score_all` as a single checkpoint's evaluation, so an image's
scores are exactly those `unet evaluate checkpoint=<its fold's model>` gives it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from unetcli.datasets.base import Layout, Sample
from unetcli.ensembles.members import Member
from unetcli.ensembles.probabilities import IDENTITY, ProbabilityStore
from unetcli.evaluation.predicted import Scoring, evaluation_samples, score_all
from unetcli.evaluation.report import EvaluationReport
from unetcli.hardware import Runtime
from unetcli.inference.options import InferenceOptions, inference_options
from unetcli.inference.restore import Restored, restore

if TYPE_CHECKING:
    from unetcli.training.processes import SingleProcess


@dataclass
class OutOfFold:
    """The fold models of an ensemble and how to run them over their own validation folds."""

    cfg: DictConfig  # the evaluate command's config (its evaluate.* inference options)
    members: list[Member]
    runtime: Runtime
    processes: SingleProcess
    # Where each scored image lives, for the worst-images gallery: name -> (layout, image).
    images: dict[str, tuple[Layout, Path]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)

    def folds(self) -> Iterator[tuple[Member, Restored, list[Sample], InferenceOptions]]:
        """Each member restored (one at a time), with its validation fold and options."""
        for member in self.members:
            cfg = self.cfg.copy()
            cfg.checkpoint = str(member.checkpoint)
            with self.processes.main_first():  # a generated dataset is written once
                restored = restore(cfg, self.runtime)
            samples = evaluation_samples(restored, "val", int(restored.config.seed))
            restored.layout.check(samples)
            options = inference_options(self.cfg.evaluate, "evaluate", restored.config)
            yield member, restored, samples, options

    def score(
        self,
        report: EvaluationReport | None,
        store: ProbabilityStore | None,
        view: str = IDENTITY,
    ) -> float:
        """Score every fold into `report` (None: only predict, e.g. a TTA view for the
        search), saving probabilities of `view` into `store`; seconds per image per model."""
        seconds, count = 0.0, 0
        for member, restored, samples, options in self.folds():
            if view != IDENTITY:
                options = replace(options, tta=(view,), tta_identity=False)
            if report is not None:
                report.fold = member.fold
            self.epochs.append(restored.epoch)
            self.images.update({s.name: (restored.layout, s.image) for s in samples})
            keep = None if store is None else _keeper(store, view, int(member.fold))
            job = Scoring(
                restored, self.runtime, samples, options, bool(self.cfg.evaluate.progress), keep
            )
            started = time.time()
            score_all(job, report, self.processes)
            seconds, count = seconds + time.time() - started, count + len(samples)
        return seconds / max(count, 1)

    def read_image(self, _index: int, name: str) -> np.ndarray | None:
        layout, path = self.images[name]
        return layout.read_image(path)


def _keeper(store: ProbabilityStore, view: str, fold: int):
    def keep(sample: Sample, probs: np.ndarray, truth: np.ndarray) -> None:
        store.save(view, sample.name, probs, truth if view == IDENTITY else None, fold)

    return keep
