"""`unet evaluate`: score a checkpoint (or a submission file) and show where it fails.

With `checkpoint=PATH` the model segments a labelled split (validation by
default) exactly as `unet predict` would (same modes, TTA, threshold and size
filter), and is scored at each image's original resolution. With
`evaluate.submission=PATH evaluate.masks=DIR` a Kaggle-format CSV is scored
against a folder of true masks, without any model.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from unetcli.config_checks import check_config
from unetcli.config_dir import config_dir
from unetcli.datasets.io import read_image, read_mask
from unetcli.distributed.launch import launch
from unetcli.ensembles.choose import choose_recipe, prepare_search
from unetcli.ensembles.members import out_of_fold_members, resolve_members
from unetcli.ensembles.probabilities import PROBABILITIES_DIR, ProbabilityStore
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.out_of_fold import OutOfFold
from unetcli.evaluation.predicted import Scoring, evaluation_samples, score_all
from unetcli.evaluation.report import EvaluationReport, Scorer, class_names
from unetcli.evaluation.submission_score import image_index, mask_index, submission_rows
from unetcli.evaluation.sweep import check_thresholds
from unetcli.inference.memory import steady_memory
from unetcli.inference.options import (
    InferenceOptions,
    inference_options,
    resolve_threads,
)
from unetcli.inference.pipeline import OrderedWork
from unetcli.inference.restore import restore
from unetcli.limits import apply_limits
from unetcli.rle import rle_decode
from unetcli.summary import metrics_table, print_summary
from unetcli.task import Task
from unetcli.training.processes import SingleProcess
from unetcli.tuning.inference import agreed_inference_runtime


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


def run_checkpoint(cfg: DictConfig, processes: SingleProcess) -> dict:
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    ev = cfg.evaluate
    runtime = agreed_inference_runtime(cfg, "evaluate", processes)
    with processes.main_first():  # a generated dataset is written once
        restored = restore(cfg, runtime)
    trained = restored.config
    split = str(ev.split)
    samples = evaluation_samples(restored, split, int(trained.seed))
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
    try:
        score_all(job, report, processes)
    finally:
        if report is not None:
            report.close()
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


def _ensemble_meta(
    oof: OutOfFold, options: InferenceOptions, pass_seconds: float, started: float
) -> dict:
    """metrics.json's description of an out-of-fold run."""
    return {
        "ensemble": [str(m.checkpoint) for m in oof.members],
        "folds": oof.members[0].folds,
        "epochs": oof.epochs[: len(oof.members)],
        "split": "out-of-fold",
        "threshold": options.threshold,
        "inference": _inference_meta(options),
        "seconds_per_image": round(pass_seconds, 5),
        "seconds": round(time.time() - started, 2),
    }


def run_ensemble(cfg: DictConfig, processes: SingleProcess) -> dict:
    """Out-of-fold evaluation of a fold ensemble; with evaluate.search, the recipe search."""
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    ev = cfg.evaluate
    if ev.split != "val":
        raise UnetError(
            f"ensemble= scores each fold's validation images (out-of-fold), but "
            f"evaluate.split={ev.split}; drop evaluate.split, or evaluate one checkpoint="
        )
    members = out_of_fold_members(resolve_members(cfg.ensemble))
    first = cfg.copy()
    first.checkpoint = str(members[0].checkpoint)  # what the tuner measures
    runtime = agreed_inference_runtime(first, "evaluate", processes)
    options = inference_options(ev, "evaluate", members[0].config)
    thresholds = check_thresholds(ev.thresholds, "evaluate.thresholds") if ev.sweep else []
    names = class_names(members[0].config.dataset, options.task)
    report = (
        EvaluationReport(run_dir, options.task, names, thresholds, int(ev.worst), True)
        if processes.is_main
        else None
    )
    keep = ev.save_probabilities or ev.search
    store = ProbabilityStore(run_dir) if keep else None
    print(
        f"evaluate: out-of-fold, {len(members)} folds of {members[0].folds} "
        f"({members[0].checkpoint} ...); {options.task.kind} task; {options.describe()}, "
        f"threshold {options.threshold:g}; {runtime.describe()}"
    )
    oof = OutOfFold(cfg, members, runtime, processes)
    try:
        pass_seconds = oof.score(report, store)
    finally:
        if report is not None:
            report.close()
    search = prepare_search(cfg, oof, store, options.task, pass_seconds) if ev.search else None
    if report is None:
        return {}  # the main process writes the report
    meta = _ensemble_meta(oof, options, pass_seconds, started)
    if store is not None:
        meta["probabilities"] = str(run_dir / PROBABILITIES_DIR)
    result = report.finish(
        meta,
        read_image=oof.read_image,
        threshold_meta={"ensemble": meta["ensemble"], "split": "out-of-fold", **meta["inference"]},
    )
    print(
        f"\nout-of-fold, {len(report.dice)} images of {len(members)} folds, at original "
        f"resolution:\n{metrics_table(result['metrics'])}"
    )
    _summary("unet evaluate: out-of-fold", result, run_dir, [("ensemble", str(cfg.ensemble))])
    if search is not None:
        result["search"] = choose_recipe(cfg, search, run_dir)
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
    if cfg.ensemble:
        return run_ensemble(cfg, processes)
    if cfg.evaluate.search or cfg.evaluate.save_probabilities:
        raise UnetError(
            "evaluate.search and evaluate.save_probabilities work on out-of-fold predictions: "
            "name the fold models with ensemble=<sweep folder of unet train cv=K> (or a list "
            "of their checkpoints) instead of checkpoint="
        )
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
