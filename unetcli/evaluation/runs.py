"""The two evaluations: one checkpoint on a split, and a fold ensemble out-of-fold.

Each scores through `score_all` (the inference engine, then per-image scores), writes the
report files from the main process and prints the one-screen summary; they return what
metrics.json holds (other processes: {}).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from unetcli.core.console import metrics_table, print_summary
from unetcli.core.hardware import Runtime
from unetcli.distributed.processes import Processes
from unetcli.errors import UnetError
from unetcli.evaluation.out_of_fold import OutOfFold
from unetcli.evaluation.probabilities import PROBABILITIES_DIR, ProbabilityStore
from unetcli.evaluation.report import EvaluationReport, class_names
from unetcli.evaluation.scoring import evaluation_samples, score_all
from unetcli.evaluation.thresholds import check_thresholds
from unetcli.inference.engine import Engine
from unetcli.inference.ensemble import Member
from unetcli.inference.options import InferenceOptions, inference_options
from unetcli.inference.predictor import Predictor


def inference_meta(options: InferenceOptions) -> dict:
    """How the images were predicted, as metrics.json and threshold.json record it."""
    return {
        "mode": options.mode,
        "tta": list(options.tta),
        "window": list(options.window) if options.window else None,
        "overlap": options.overlap,
        "min_object_size": options.min_object_size,
        "fill_holes": options.fill_holes,
    }


def print_evaluation_summary(
    title: str, report: dict, run_dir: Path, extra: list[tuple[str, str]]
) -> None:
    rows = [
        *extra,
        ("mean dice", f"{report['metrics']['dice']:.4f} (Carvana-style: per image, then averaged)"),
    ]
    if "best_threshold" in report:
        best = report["best_threshold"]
        rows.append((
            "best threshold",
            f"{best['threshold']:g} (Dice {best['dice']:.4f}); use it with "
            f"predict.threshold_from={run_dir}",
        ))  # fmt: skip
    for key, name in report["files"].items():
        rows.append((key.replace("_", " "), str(run_dir / name)))
    rows.append(("tensorboard", f"tensorboard --logdir {run_dir / 'tensorboard'}"))
    print_summary(title, rows)


def _report(cfg: DictConfig, options: InferenceOptions, dataset: DictConfig, folds: bool):
    ev = cfg.evaluate
    thresholds = check_thresholds(ev.thresholds, "evaluate.thresholds") if ev.sweep else []
    names = class_names(dataset, options.task)
    run_dir = Path(cfg.paths.run_dir)
    return EvaluationReport(run_dir, options.task, names, thresholds, int(ev.worst), folds)


def evaluate_checkpoint(cfg: DictConfig, predictor: Predictor, processes: Processes) -> dict:
    """Score one checkpoint on `evaluate.split`, at each image's original resolution."""
    started, run_dir, split = time.time(), Path(cfg.paths.run_dir), str(cfg.evaluate.split)
    restored, options = predictor.first, predictor.options
    samples = evaluation_samples(restored, split)
    restored.layout.check(samples)
    report = _report(cfg, options, restored.config.dataset, False) if processes.is_main else None
    print(
        f"evaluate: {split} split, {len(samples)} images of {restored.layout.root}; "
        f"{options.task.kind} task; {options.describe()}, threshold {options.threshold_text()}; "
        f"{predictor.runtime.describe()}"
    )
    engine = Engine(predictor, processes, "evaluate" if cfg.evaluate.progress else None)
    try:
        score_all(engine, samples, report)
    finally:
        if report is not None:
            report.close()
    if report is None:
        return {}  # the main process writes the report
    inference = inference_meta(options)
    result = report.finish(
        {"checkpoint": str(cfg.checkpoint), "epoch": restored.epoch, "split": split,
         "threshold": options.threshold, "inference": inference,
         "seconds": round(time.time() - started, 2)},  # fmt: skip
        read_image=lambda i, _name: restored.layout.read_image(samples[i].image),
        tb_step=restored.epoch,
        threshold_meta={"checkpoint": str(restored.checkpoint.resolve()), "split": split,
                        "images": len(samples), **inference},  # fmt: skip
    )
    print(
        f"\n{split} split, {len(samples)} images, epoch {restored.epoch}, at original "
        f"resolution:\n{metrics_table(result['metrics'])}"
    )
    print_evaluation_summary(
        "unet evaluate: done", result, run_dir, [("checkpoint", str(cfg.checkpoint))]
    )
    return result


@dataclass
class OutOfFoldRun:
    """An out-of-fold evaluation done: its report (main process; {} elsewhere), the folds,
    where the probabilities went, and the seconds per image of one model's pass."""

    result: dict
    oof: OutOfFold
    options: InferenceOptions
    store: ProbabilityStore | None
    pass_seconds: float


def evaluate_out_of_fold(
    cfg: DictConfig, members: list[Member], runtime: Runtime, processes: Processes
) -> OutOfFoldRun:
    """Each fold's validation images scored by that fold's model, into one report."""
    started, run_dir, ev = time.time(), Path(cfg.paths.run_dir), cfg.evaluate
    if ev.split != "val":
        raise UnetError(
            f"ensemble= scores each fold's validation images (out-of-fold), but "
            f"evaluate.split={ev.split}; drop evaluate.split, or evaluate one checkpoint="
        )
    oof = OutOfFold(cfg, members, runtime, processes)
    store = ProbabilityStore(run_dir) if ev.save_probabilities or ev.search else None
    options = inference_options(ev, "evaluate", members[0].config)  # every fold's, as read
    dataset = members[0].config.dataset
    report = _report(cfg, options, dataset, True) if processes.is_main else None
    print(
        f"evaluate: out-of-fold, {len(members)} folds of {members[0].folds} "
        f"({members[0].checkpoint} ...); {options.task.kind} task; {options.describe()}, "
        f"threshold {options.threshold_text()}; {runtime.describe()}"
    )
    try:
        pass_seconds = oof.score(report, store)
    finally:
        if report is not None:
            report.close()
    if report is None:
        return OutOfFoldRun({}, oof, options, store, pass_seconds)
    meta = {"ensemble": [str(m.checkpoint) for m in members], "folds": members[0].folds,
            "epochs": oof.epochs[: len(members)], "split": "out-of-fold",
            "threshold": options.threshold, "inference": inference_meta(options),
            "seconds_per_image": round(pass_seconds, 5),
            "seconds": round(time.time() - started, 2)}  # fmt: skip
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
    print_evaluation_summary(
        "unet evaluate: out-of-fold", result, run_dir, [("ensemble", str(cfg.ensemble))]
    )
    return OutOfFoldRun(result, oof, options, store, pass_seconds)
