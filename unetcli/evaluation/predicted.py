"""Predict labelled images as `unet predict` would and score each one (unet evaluate's core).

One model's evaluation and the out-of-fold evaluation of a fold ensemble both go through
`score_all`: the second calls it once per fold, into one report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from unetcli.build import make_loader
from unetcli.datasets.base import Sample
from unetcli.datasets.folds import dataset_split
from unetcli.errors import UnetError
from unetcli.evaluation.report import EvaluationReport, ImageResult, Scorer
from unetcli.hardware import Runtime
from unetcli.inference.dataset import InferenceDataset, collate_items, test_images_of
from unetcli.inference.geometry import Geometry, restore_size
from unetcli.inference.options import InferenceOptions, inference_transform
from unetcli.inference.pipeline import OrderedWork, predictions
from unetcli.inference.postprocess import postprocess
from unetcli.inference.restore import Restored

if TYPE_CHECKING:
    from unetcli.training.processes import SingleProcess

#: Called with each image's sample, probabilities (C, H, W) at original size and true mask.
Keep = Callable[[Sample, np.ndarray, np.ndarray], None]


@dataclass
class Scoring:
    """What every process needs to score its share of the images."""

    restored: Restored
    runtime: Runtime
    samples: list[Sample]
    options: InferenceOptions
    progress: bool
    # Also hands each image's probabilities to this (evaluate.save_probabilities, the search).
    keep: Keep | None = None


def evaluation_samples(restored: Restored, split: str, seed: int) -> list[Sample]:
    """The images `evaluate.split` names: the run's own validation split (its fold, with
    dataset.folds), its training split, or the test images (where they have masks)."""
    trained = restored.config
    if split == "test":
        samples = test_images_of(restored.layout)
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
    train_samples, val_samples = dataset_split(restored.layout, trained.dataset, seed)
    samples = val_samples if split == "val" else train_samples
    if not samples:
        raise UnetError(
            f"the {split} split of {restored.layout.root} is empty (dataset.validation_size="
            f"{trained.dataset.validation_size}, dataset.fold={trained.dataset.get('fold')}: "
            "a model trained with dataset.fold=all has no validation images); use "
            "evaluate.split=train"
        )
    return samples


def _score_block(
    job: Scoring, block: range, scorer: Scorer, consume: Callable[[ImageResult], None]
) -> None:
    """Predict the samples of `block` as `unet predict` would; their scores go to `consume`,
    in order. One process scores all samples; several each score a block of whole batches."""
    options, samples = job.options, job.samples
    batch = 1 if options.mode == "sliding" else options.batch_size
    dataset = InferenceDataset(
        job.restored.layout,
        samples[block.start : block.stop],
        inference_transform(job.restored.config, options.mode),
        with_masks=True,
    )
    loader = make_loader(dataset, batch, job.runtime)
    loader.collate_fn = collate_items  # lists: images of different sizes cannot be stacked

    def work(index: int, geometry: tuple, probs: np.ndarray, mask) -> ImageResult:
        sample = samples[index]
        full = restore_size(probs, Geometry.from_tuple(geometry))
        pred = postprocess(
            full, options.task, options.threshold, options.min_object_size, options.fill_holes
        )
        truth = mask.numpy()
        if truth.shape[-2:] != pred.shape[-2:]:
            raise UnetError(
                f"mask {sample.mask} is {truth.shape[-1]}x{truth.shape[-2]} but its image "
                f"{sample.image} is {pred.shape[-1]}x{pred.shape[-2]}; masks must match their "
                "images"
            )
        if job.keep is not None:
            job.keep(sample, full, truth)
        return scorer(index, sample.name, pred, truth, full)

    pending = 2 * options.batch_size + 2 * options.threads
    with OrderedWork(work, consume, options.threads, pending) as pool:
        for item, probs in predictions(
            job.restored.model,
            loader,
            job.runtime,
            options,
            desc="evaluate",
            progress=job.progress,
        ):
            index = block.start + int(item["index"])
            pool.submit(index, item["geometry"], probs, item["mask"])


def score_all(
    job: Scoring, report: EvaluationReport | None, processes: SingleProcess
) -> None:
    """Score every sample into the report (main process), in order, however many processes.

    With several processes each scores a contiguous block of whole loader
    batches (so each image is predicted exactly as one process would) and the
    main process adds the gathered results in order. The caller closes the report.
    """
    options = job.options
    swept = report.sweep.thresholds if report is not None and report.sweep else ()
    scorer = Scorer(
        options.task, processes.from_main(swept), options.min_object_size, options.fill_holes
    )
    batch = 1 if options.mode == "sliding" else options.batch_size
    block = processes.shard(len(job.samples), batch)
    if report is not None and processes.world_size == 1:
        _score_block(job, block, scorer, report.add)
        return
    mine: list[ImageResult] = []
    job.progress = job.progress and processes.is_main
    _score_block(job, block, scorer, mine.append)
    gathered = processes.gather(mine)
    if report is not None:
        for result in gathered:
            report.add(result)
