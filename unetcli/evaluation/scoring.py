"""Score labelled images as `unet predict` would predict them (unet evaluate's core).

The images go through the inference engine exactly as predict sends them; the sink here
turns each image's probabilities into labels and scores them at the original resolution.
One model's evaluation and the out-of-fold evaluation of a fold ensemble both call
`score_all`: the second once per fold, into one report.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unetcli.datasets.base import Sample
from unetcli.datasets.folds import dataset_split
from unetcli.distributed.processes import Processes
from unetcli.errors import UnetError
from unetcli.evaluation.report import EvaluationReport, ImageResult, Scorer
from unetcli.inference.engine import Engine, Finished
from unetcli.inference.inputs import held_out_images
from unetcli.inference.restore import Restored
from unetcli.postprocessing.labels import postprocess

#: Called on a pool thread with each image's sample, probabilities (C, H, W) at its original
#: size and true mask (evaluate.save_probabilities, the recipe search).
Keep = Callable[[Sample, np.ndarray, np.ndarray], None]


def evaluation_samples(restored: Restored, split: str) -> list[Sample]:
    """The images `evaluate.split` names: the run's own validation split (its fold, with
    dataset.folds), its training split, or the test images (where they have masks)."""
    trained = restored.config
    if split == "test":
        samples = held_out_images(restored.layout)
        unlabelled = [s.name for s in samples if s.mask is None]
        if unlabelled:
            raise UnetError(
                f"evaluate.split=test needs true masks for the test images, but "
                f"{restored.layout.root} has none for {len(unlabelled)} of them (e.g. "
                f"{unlabelled[0]}); use evaluate.split=val"
            )
        return samples
    if split not in ("val", "train"):
        raise UnetError(f"evaluate.split must be val, train or test, got {split!r}")
    train_samples, val_samples = dataset_split(restored.layout, trained.dataset, int(trained.seed))
    samples = val_samples if split == "val" else train_samples
    if not samples:
        raise UnetError(
            f"the {split} split of {restored.layout.root} is empty (dataset.validation_size="
            f"{trained.dataset.validation_size}, dataset.fold={trained.dataset.get('fold')}: "
            "a model trained with dataset.fold=all has no validation images); use "
            "evaluate.split=train"
        )
    return samples


class Scores:
    """The sink of `unet evaluate`: labels as predict makes them, scored per image (pool
    threads); the results go to `consume` in input order."""

    def __init__(
        self,
        engine: Engine,
        scorer: Scorer,
        consume: Callable[[ImageResult], None],
        keep: Keep | None,
    ) -> None:
        self.options = engine.predictor.options
        self.scorer = scorer
        self.take = consume
        self.keep = keep

    def finish(self, image: Finished) -> ImageResult:
        options, sample, truth = self.options, image.sample, image.mask
        pred = postprocess(
            image.probabilities,
            options.task,
            options.threshold,
            options.min_object_size,
            options.fill_holes,
        )
        assert truth is not None  # the engine reads masks for this sink
        if truth.shape[-2:] != pred.shape[-2:]:
            raise UnetError(
                f"mask {sample.mask} is {truth.shape[-1]}x{truth.shape[-2]} but its image "
                f"{sample.image} is {pred.shape[-1]}x{pred.shape[-2]}; masks must match "
                "their images"
            )
        if self.keep is not None:
            self.keep(sample, image.probabilities, truth)
        return self.scorer(image.index, sample.name, pred, truth, image.probabilities)


def score_all(
    engine: Engine,
    samples: list[Sample],
    report: EvaluationReport | None,
    keep: Keep | None = None,
) -> None:
    """Score every sample into the report (main process), in order, however many processes.

    With several processes each scores its share (`Engine.share`) and the main process
    adds the gathered results in order. The caller closes the report.
    """
    processes: Processes = engine.processes
    options = engine.predictor.options
    totals = report.threshold_totals if report is not None else None
    swept = totals.thresholds if totals is not None else ()
    scorer = Scorer(
        options.task, processes.from_main(swept), options.min_object_size, options.fill_holes
    )
    share = engine.share(samples)
    if report is not None and processes.world_size == 1:
        engine.run(share, Scores(engine, scorer, report.add, keep), masks=True)
        return
    mine: list[ImageResult] = []
    engine.run(share, Scores(engine, scorer, mine.append, keep), masks=True)
    gathered = processes.gather(mine)
    if report is not None:
        for result in gathered:
            report.add(result)
