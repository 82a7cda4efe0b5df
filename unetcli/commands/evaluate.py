"""`unet evaluate`: score a checkpoint (or a submission file) and show where it fails.

With `checkpoint=PATH` the model segments a labelled split (validation by
default) exactly as `unet predict` would (same modes, TTA, threshold and size
filter), and is scored at each image's original resolution. With
`evaluate.submission=PATH evaluate.masks=DIR` a Kaggle-format CSV is scored
against a folder of true masks, without any model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from unetcli.build import make_loader
from unetcli.config_checks import check_config
from unetcli.config_dir import config_dir
from unetcli.datasets.base import Sample
from unetcli.datasets.io import read_image, read_mask
from unetcli.distributed.launch import launch
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.report import EvaluationReport, ImageResult, Scorer, class_names
from unetcli.evaluation.submission_score import image_index, mask_index, submission_rows
from unetcli.evaluation.sweep import check_thresholds
from unetcli.hardware import Runtime
from unetcli.inference.dataset import InferenceDataset, collate_items, test_images_of
from unetcli.inference.geometry import Geometry, restore_size
from unetcli.inference.memory import steady_memory
from unetcli.inference.options import (
    InferenceOptions,
    inference_options,
    inference_transform,
    resolve_threads,
)
from unetcli.inference.pipeline import OrderedWork, predictions
from unetcli.inference.postprocess import postprocess
from unetcli.inference.restore import Restored, restore
from unetcli.limits import apply_limits
from unetcli.rle import rle_decode
from unetcli.summary import metrics_table, print_summary
from unetcli.task import Task
from unetcli.training.processes import SingleProcess
from unetcli.tuning.inference import agreed_inference_runtime


def _samples(restored, split: str, seed: int) -> list[Sample]:
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
    train_samples, val_samples = restored.layout.split(float(trained.dataset.validation_size), seed)
    samples = val_samples if split == "val" else train_samples
    if not samples:
        raise UnetError(
            f"the {split} split of {restored.layout.root} is empty (dataset.validation_size="
            f"{trained.dataset.validation_size}); use evaluate.split=train"
        )
    return samples


def _summary(title: str, report: dict, run_dir: Path, extra: list[tuple[str, str]]) -> None:
    rows = [
        *extra,
        ("mean dice", f"{report['metrics']['dice']:.4f} (Carvana-style: per image, then averaged)"),
    ]
    if "best_threshold" in report:
        best = report["best_threshold"]
        rows.append(
            (
                "best threshold",
                f"{best['threshold']:g} (Dice {best['dice']:.4f}); use it with "
                f"predict.threshold_from={run_dir}",
            )
        )
    for key, name in report["files"].items():
        rows.append((key.replace("_", " "), str(run_dir / name)))
    rows.append(("tensorboard", f"tensorboard --logdir {run_dir / 'tensorboard'}"))
    print_summary(title, rows)


def _inference_meta(options: InferenceOptions) -> dict:
    return {
        "mode": options.mode,
        "tta": list(options.tta),
        "window": list(options.window) if options.window else None,
        "overlap": options.overlap,
        "min_object_size": options.min_object_size,
        "fill_holes": options.fill_holes,
    }


@dataclass
class Scoring:
    """What every process needs to score its share of the images."""

    restored: Restored
    runtime: Runtime
    samples: list[Sample]
    options: InferenceOptions
    progress: bool


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


def _score_all(job: Scoring, report: EvaluationReport | None, processes: SingleProcess) -> None:
    """Score every sample into the report (main process), in order, however many processes.

    With several processes each scores a contiguous block of whole loader
    batches (so each image is predicted exactly as one process would) and the
    main process adds the gathered results in order.
    """
    options = job.options
    swept = report.sweep.thresholds if report is not None and report.sweep else ()
    scorer = Scorer(
        options.task, processes.from_main(swept), options.min_object_size, options.fill_holes
    )
    batch = 1 if options.mode == "sliding" else options.batch_size
    block = processes.shard(len(job.samples), batch)
    if report is not None and processes.world_size == 1:
        try:
            _score_block(job, block, scorer, report.add)
        finally:
            report.close()
        return
    mine: list[ImageResult] = []
    job.progress = job.progress and processes.is_main
    _score_block(job, block, scorer, mine.append)
    gathered = processes.gather(mine)
    if report is not None:
        try:
            for result in gathered:
                report.add(result)
        finally:
            report.close()


def run_checkpoint(cfg: DictConfig, processes: SingleProcess) -> dict:
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    ev = cfg.evaluate
    runtime = agreed_inference_runtime(cfg, "evaluate", processes)
    with processes.main_first():  # a generated dataset is written once
        restored = restore(cfg, runtime)
    trained = restored.config
    split = str(ev.split)
    samples = _samples(restored, split, int(trained.seed))
    restored.layout.check(samples)
    options = inference_options(ev, "evaluate", trained)
    task = options.task
    thresholds = check_thresholds(ev.thresholds, "evaluate.thresholds") if ev.sweep else []
    names = class_names(trained.dataset, task)
    report = (
        EvaluationReport(run_dir, task, names, thresholds, int(ev.worst))
        if processes.is_main
        else None
    )
    print(
        f"evaluate: {split} split, {len(samples)} images of {restored.layout.root}; "
        f"{task.kind} task; {options.describe()}, threshold {options.threshold:g}; "
        f"{runtime.describe()}"
    )
    job = Scoring(restored, runtime, samples, options, bool(ev.progress))
    _score_all(job, report, processes)
    if report is None:
        return {}  # the main process writes the report
    inference = _inference_meta(options)
    meta = {
        "checkpoint": str(cfg.checkpoint),
        "epoch": restored.epoch,
        "split": split,
        "threshold": options.threshold,
        "inference": inference,
        "seconds": round(time.time() - started, 2),
    }
    result = report.finish(
        meta,
        read_image=lambda i, _name: restored.layout.read_image(samples[i].image),
        tb_step=restored.epoch,
        threshold_meta={
            "checkpoint": str(Path(str(cfg.checkpoint)).resolve()),
            "split": split,
            "images": len(samples),
            **inference,
        },
    )
    print(
        f"\n{split} split, {len(samples)} images, epoch {restored.epoch}, at original "
        f"resolution:\n{metrics_table(result['metrics'])}"
    )
    _summary("unet evaluate: done", result, run_dir, [("checkpoint", str(cfg.checkpoint))])
    return result


#: A Kaggle submission scored against true masks: one binary mask per row (Carvana's format).
SUBMISSION_TASK = Task("binary", 1)


def _score_rows(
    path: Path, masks: dict[str, Path], report: EvaluationReport, threads: int
) -> tuple[set[str], list[str]]:
    """Score each row against its true mask; (stems scored, names of rows without a mask)."""
    scorer = Scorer(SUBMISSION_TASK)
    scored: set[str] = set()
    unmatched: list[str] = []

    def work(number: int, name: str, rle: str):
        mask_path = masks.get(Path(name).stem)
        if mask_path is None:
            return name
        truth = (read_mask(mask_path) > 0).astype(np.uint8)
        try:
            pred = rle_decode(rle, truth.shape)
        except ValueError as err:
            raise UnetError(
                f"{path} line {number} ({name}) does not decode against its true mask "
                f"{mask_path} ({truth.shape[1]}x{truth.shape[0]}): {err}"
            ) from err
        return scorer(number - 2, name, pred, truth)

    def consume(result) -> None:
        if isinstance(result, str):
            unmatched.append(result)
            return
        scored.add(Path(result.name).stem)
        report.add(result)

    try:
        with OrderedWork(work, consume, threads, 4 * threads) as pool:
            for row in submission_rows(path):
                pool.submit(*row)
    finally:
        report.close()
    return scored, unmatched


def run_submission(cfg: DictConfig) -> dict:
    """Score a Kaggle-format submission CSV against a folder of true masks."""
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    ev = cfg.evaluate
    path = Path(str(ev.submission))
    if not ev.masks:
        raise UnetError(
            "evaluate.submission needs evaluate.masks=DIR, the folder of true masks to score "
            "against (files named <image stem>_mask.gif or <image stem>.png)"
        )
    masks = mask_index(Path(str(ev.masks)))
    images = image_index(Path(str(ev.images)) if ev.images else None)
    report = EvaluationReport(run_dir, SUBMISSION_TASK, ["background", "object"], [], int(ev.worst))
    threads = resolve_threads(ev.threads, "evaluate.threads")
    scored, unmatched = _score_rows(path, masks, report, threads)
    if not scored:
        raise UnetError(
            f"no row of {path} has a true mask in {ev.masks} (rows name images like "
            f"{unmatched[0] if unmatched else '<none>'}); point evaluate.masks at the masks of "
            "the images the submission covers"
        )
    without_row = sorted(set(masks) - scored)

    def read(_index: int, name: str):
        found = images.get(Path(name).stem)
        return read_image(found) if found is not None else None

    result = report.finish(
        {
            "submission": str(path),
            "masks": str(ev.masks),
            "rows_without_mask": len(unmatched),
            "masks_without_row": len(without_row),
            "seconds": round(time.time() - started, 2),
        },
        read_image=read if images else None,
    )
    print(f"\n{path}: {len(scored)} images scored\n{metrics_table(result['metrics'])}")
    extra = [("submission", str(path))]
    if unmatched:
        extra.append(("not scored", f"{len(unmatched)} rows have no mask, e.g. {unmatched[0]}"))
    if without_row:
        extra.append(
            ("missing rows", f"{len(without_row)} masks have no row, e.g. {without_row[0]}")
        )
    _summary("unet evaluate: submission scored", result, run_dir, extra)
    return result


def evaluate(cfg: DictConfig, processes: SingleProcess) -> dict:
    """The work of one process; a submission file is scored by the main process alone."""
    steady_memory()
    if cfg.evaluate.submission:
        return run_submission(cfg) if processes.is_main else {}
    return run_checkpoint(cfg, processes)


def run(cfg: DictConfig) -> dict:
    """Evaluate in one process, or in several (hardware.devices=N, torchrun); the report."""
    apply_limits(cfg.limits)
    check_config(cfg)
    return launch(cfg, evaluate)


@hydra.main(config_path=config_dir(), config_name="evaluate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
