"""`unet predict`: segment test images and write a Kaggle-style gzip RLE submission.

The rows and pictures are `unetcli.inference.prediction_files`; the images go through the
one inference engine (`unetcli.inference.engine`).
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from unetcli.config.location import config_dir
from unetcli.config.schema import check_config
from unetcli.core.console import print_summary
from unetcli.core.limits import apply_limits
from unetcli.core.memory import steady_memory
from unetcli.distributed.launch import launch
from unetcli.distributed.processes import Processes
from unetcli.errors import UnetError, user_errors
from unetcli.inference.engine import Engine
from unetcli.inference.inputs import images_to_predict
from unetcli.inference.prediction_files import PICTURES, ImageFiles, output_target, write_share
from unetcli.inference.predictor import load_predictor, sources_of
from unetcli.recipes.apply import apply_recipe
from unetcli.submission.writer import image_rows, join_parts, part_path
from unetcli.tracking.follow_up import log_to_training_run
from unetcli.tuning.inference import agreed_inference_runtime


def predict(cfg: DictConfig, processes: Processes) -> Path:
    """The work of one process: its contiguous block of the images, in submission order.

    With several processes each writes its own resumable part and the main process joins
    them, so the file decompresses to what one process writes.
    """
    started, opts = time.time(), cfg.predict
    output_dir, submission = output_target(opts, cfg.paths.run_dir)
    if submission is None:
        return output_dir / "submission.csv.gz"
    steady_memory()
    sources, recipe = apply_recipe(cfg, sources_of(cfg))  # the recipe sets predict.* keys
    if recipe:
        print(f"predict: {recipe}")
    runtime = agreed_inference_runtime(cfg, sources[0].checkpoint, "predict", processes)
    with processes.main_first():  # a generated dataset is written once
        predictor = load_predictor(sources, cfg, "predict", runtime)
    options, layout = predictor.options, predictor.first.layout
    samples = images_to_predict(opts.input, layout, options.task)
    engine = Engine(predictor, processes, "predict" if opts.progress else None)
    share = engine.share(samples)
    save = {key: bool(opts[f"save_{key}"]) for key in PICTURES}
    sink = ImageFiles(layout, options, output_dir, save)
    world = processes.world_size
    target = submission if world == 1 else part_path(submission, processes.rank, world)
    rows = sum(len(image_rows(s.name, options.task)) for s in samples)
    ensemble = f"ensemble of {len(sources)} models averaged; " if len(sources) > 1 else ""
    print(
        f"predict: {len(samples)} images ({options.task.kind}, {rows} rows) -> {submission}; "
        f"{ensemble}{options.describe()}, threshold {options.threshold_text()}; "
        f"{runtime.describe()}"
    )
    loop_started = time.time()
    parts = processes.gather_objects(write_share(engine, share, sink, target, opts))
    if not processes.is_main:
        return submission
    if world > 1:
        join_parts([part_path(submission, r, world) for r in range(world)], submission)
    computed = len(samples) - sum(p.resumed_images for p in parts)
    seconds = time.time() - loop_started
    summary = [*_models_summary(sources, recipe),
        ("submission", f"{submission} ({sum(p.rows for p in parts)} rows)"),
        ("task", f"{options.task.kind}, {options.task.num_classes} output(s)"),
        ("inference", f"{options.describe()}, threshold {options.threshold_text()}"),
        ("speed", f"{computed / max(seconds, 1e-9):.2f} images/s ({computed} images in "
                  f"{seconds:.1f} s; {time.time() - started:.1f} s with start-up"
                  f"{'' if world == 1 else f', {world} processes'})")]  # fmt: skip
    if computed < len(samples):
        summary.append(("resumed", f"after {len(samples) - computed} images written earlier"))
    summary += [(key, str(output_dir / key)) for key, on in save.items() if on]
    print_summary("unet predict: done", summary)
    if len(sources) == 1:  # into the training run the checkpoint came from
        values = {"predict/images": float(len(samples)), "predict/seconds": seconds}
        run_dir = Path(cfg.paths.run_dir)
        log_to_training_run(sources[0].checkpoint, run_dir, values, [], submission)
    return submission


def _models_summary(sources: list, recipe: str | None) -> list[tuple[str, str]]:
    """The summary's first lines: the checkpoint, or the ensemble and each member."""
    lines = [("recipe", recipe)] if recipe else []
    if len(sources) == 1:
        return lines + [("checkpoint", sources[0].label)]
    lines.append(("ensemble", f"{len(sources)} models, probabilities averaged"))
    return lines + [(f"member {i}", s.label) for i, s in enumerate(sources, 1)]


def _run_onnx(cfg: DictConfig) -> Path:
    """checkpoint=model.onnx: the torch-free runner (unetcli.runner) on predict.input."""
    from unetcli.runner.__main__ import run as run_onnx

    if not cfg.predict.input:
        raise UnetError(
            "checkpoint=model.onnx predicts a folder of images: add predict.input=DIR (the "
            "exported model carries no dataset)"
        )
    out = Path(cfg.predict.output_dir or cfg.paths.run_dir)
    print("predict: model.onnx follows its inference.json (mode, window, TTA, threshold)")
    return run_onnx(
        Path(cfg.checkpoint), Path(cfg.predict.input), out, bool(cfg.predict.save_masks)
    )


def run(cfg: DictConfig) -> Path:
    """Predict in one process, or in several (hardware.devices=N, torchrun); the submission."""
    apply_limits(cfg.limits)
    check_config(cfg)
    if not OmegaConf.is_missing(cfg, "checkpoint") and str(cfg.checkpoint).endswith(".onnx"):
        return _run_onnx(cfg)
    return launch(cfg, predict)


@hydra.main(config_path=config_dir(), config_name="predict", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
