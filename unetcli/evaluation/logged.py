"""What `unet evaluate` logs to the experiment trackers: into the training run a checkpoint
came from, or for an ensemble into the run that links its folds' runs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from unetcli.tracking.follow_up import log_to_linked_run, log_to_training_run, numbers


def log_checkpoint(cfg: DictConfig, result: dict, checkpoint: Path) -> None:
    """One checkpoint's scores and report files into its training run."""
    run_dir = Path(cfg.paths.run_dir)
    values = numbers(result.get("metrics", {}), f"evaluate/{cfg.evaluate.split}")
    log_to_training_run(checkpoint, run_dir, values, report_files(run_dir))


def report_files(run_dir: Path) -> list[Path]:
    """The report files an evaluation keeps with the tracker runs."""
    return [run_dir / name for name in ("metrics.json", "per_image.csv")]


def log_ensemble(
    cfg: DictConfig, result: dict, checkpoints: list[Path], extra: list[Path]
) -> None:
    """The out-of-fold scores (and the recipe search's, with its `extra` files: recipe.yaml)
    into the run linking the folds."""
    values = numbers(result.get("metrics", {}), "evaluate/out-of-fold")
    steps = result.get("search", {}).get("steps", [])
    for step in steps:
        values[f"evaluate/recipe/{step['step']}"] = float(step["dice"])
    if steps:  # the chosen recipe's out-of-fold Dice, under one name whatever the steps
        values["evaluate/recipe/dice"] = float(steps[-1]["dice"])
    run_dir = Path(cfg.paths.run_dir)
    log_to_linked_run(checkpoints, run_dir, values, [*report_files(run_dir), *extra])
