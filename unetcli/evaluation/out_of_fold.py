"""Out-of-fold evaluation: each fold's validation images predicted by that fold's model.

`unet evaluate ensemble=<sweep folder or list>` scores the union of the folds into one
report, through the same `score_all` as a single checkpoint's evaluation, so an image's
scores are exactly those `unet evaluate checkpoint=<its fold's model>` gives it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from unetcli.core.hardware import Runtime
from unetcli.datasets.base import Layout, Sample
from unetcli.distributed.processes import Processes
from unetcli.evaluation.probabilities import IDENTITY, ProbabilityStore, Saved
from unetcli.evaluation.report import EvaluationReport
from unetcli.evaluation.scoring import evaluation_samples, score_all
from unetcli.inference.engine import Engine
from unetcli.inference.ensemble import Member
from unetcli.inference.predictor import Predictor, Source, load_predictor


@dataclass
class OutOfFold:
    """The fold models of an ensemble and how to run them over their own validation folds."""

    cfg: DictConfig  # the evaluate command's config (its evaluate.* inference options)
    members: list[Member]
    runtime: Runtime
    processes: Processes
    # Where each scored image lives, for the worst-images gallery: name -> (layout, image).
    images: dict[str, tuple[Layout, Path]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)

    def folds(self) -> Iterator[tuple[Member, Predictor, list[Sample]]]:
        """Each member restored (one at a time) with its validation fold."""
        for member in self.members:
            source = Source(member.checkpoint, member.label)
            with self.processes.main_first():  # a generated dataset is written once
                predictor = load_predictor([source], self.cfg, "evaluate", self.runtime)
            samples = evaluation_samples(predictor.first, "val")
            predictor.first.layout.check(samples)
            yield member, predictor, samples

    def score(
        self,
        report: EvaluationReport | None,
        store: ProbabilityStore | None,
        view: str = IDENTITY,
    ) -> float:
        """Score every fold into `report` (None: only predict, e.g. a TTA view for the
        search), saving probabilities of `view` into `store`; seconds per image per model."""
        seconds, count = 0.0, 0
        progress = "evaluate" if self.cfg.evaluate.progress else None
        for member, predictor, samples in self.folds():
            if view != IDENTITY:
                predictor = predictor.with_options(tta=(view,), tta_identity=False)
            if report is not None:
                report.fold = member.fold
            self.epochs.append(predictor.first.epoch)
            layout = predictor.first.layout
            self.images.update({s.name: (layout, s.image) for s in samples})
            engine = Engine(predictor, self.processes, progress)
            keep = None if store is None else Saved(store, view, int(member.fold))
            started = time.time()
            if report is None and keep is not None:  # a view for the search: saved, not scored
                engine.run(engine.share(samples), keep, masks=view == IDENTITY)
                self.processes.wait_for_all()  # every share saved before the search reads
            else:
                score_all(engine, samples, report, keep)
            seconds, count = seconds + time.time() - started, count + len(samples)
        return seconds / max(count, 1)

    def read_image(self, _index: int, name: str) -> np.ndarray | None:
        layout, path = self.images[name]
        return layout.read_image(path)
