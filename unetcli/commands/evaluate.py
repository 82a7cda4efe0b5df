"""`unet evaluate`: score a checkpoint, or a fold ensemble out-of-fold, and show where it fails.

With `checkpoint=PATH` the model segments a labelled split (validation by default) exactly
as `unet predict` would (the same inference keys, conf/inference.yaml) and is scored at
each image's original resolution. With `ensemble=<sweep folder>` each fold's validation
images are scored by that fold's model; `evaluate.search=true` then chooses the inference
recipe on those out-of-fold probabilities.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.config.schema import check_config
from unetcli.core.limits import apply_limits
from unetcli.core.memory import steady_memory
from unetcli.distributed.launch import launch
from unetcli.distributed.processes import Processes
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.logged import log_checkpoint, log_ensemble
from unetcli.evaluation.runs import evaluate_checkpoint, evaluate_out_of_fold
from unetcli.evaluation.scored_submission import SubmissionFiles, score_submission
from unetcli.inference.ensemble import out_of_fold_members, resolve_members
from unetcli.inference.options import resolve_threads
from unetcli.inference.predictor import load_predictor, sources_of
from unetcli.recipes.choose import RECIPE_FILE, choose_recipe, prepare_search
from unetcli.tuning.inference import agreed_inference_runtime


def run_checkpoint(cfg: DictConfig, processes: Processes) -> dict:
    sources = sources_of(cfg)
    runtime = agreed_inference_runtime(cfg, sources[0].checkpoint, "evaluate", processes)
    with processes.main_first():  # a generated dataset is written once
        predictor = load_predictor(sources, cfg, "evaluate", runtime)
    result = evaluate_checkpoint(cfg, predictor, processes)
    if processes.is_main and result:  # into the training run the checkpoint came from
        log_checkpoint(cfg, result, sources[0].checkpoint)
    return result


def run_ensemble(cfg: DictConfig, processes: Processes) -> dict:
    """Out-of-fold evaluation of a fold ensemble; with evaluate.search, the recipe search."""
    members = out_of_fold_members(resolve_members(cfg.ensemble))
    runtime = agreed_inference_runtime(cfg, members[0].checkpoint, "evaluate", processes)
    done = evaluate_out_of_fold(cfg, members, runtime, processes)
    result = done.result
    if cfg.evaluate.search:
        assert done.store is not None  # the search saves the probabilities it reads
        search = prepare_search(cfg, done.oof, done.store, done.options.task, done.pass_seconds)
        if not processes.is_main:
            return {}
        result = {**result, "search": choose_recipe(cfg, search, Path(cfg.paths.run_dir))}
    if processes.is_main and result:
        recipe = [Path(cfg.paths.run_dir) / RECIPE_FILE] if cfg.evaluate.search else []
        log_ensemble(cfg, result, [m.checkpoint for m in members], recipe)
    return result


def run_submission(cfg: DictConfig) -> dict:
    """evaluate.submission=: what `unet score` does now, with a note that says so."""
    ev = cfg.evaluate
    if not ev.masks:
        raise UnetError(
            "evaluate.submission needs evaluate.masks=DIR, the folder of true masks to score "
            "against (files named <image stem>_mask.gif or <image stem>.png); `unet score "
            "SUBMISSION masks=DIR` scores a submission directly"
        )
    print(f"evaluate: note: `unet score {ev.submission} masks={ev.masks}` scores a submission "
          "now; evaluate.submission= runs the same")  # fmt: skip
    files = SubmissionFiles(
        Path(str(ev.submission)), Path(str(ev.masks)), Path(ev.images) if ev.images else None
    )
    threads = resolve_threads(ev.threads, "evaluate.threads")
    return score_submission(files, Path(cfg.paths.run_dir), int(ev.worst), threads)


def evaluate(cfg: DictConfig, processes: Processes) -> dict:
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
