"""`unet train`: fit a model, keeping checkpoints, metrics.csv and TensorBoard logs.

With `hardware.devices=N`, or under torchrun, the same training runs in
several processes (`unetcli.distributed.launch`); the main one writes.
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
from unetcli.errors import user_errors
from unetcli.models.input_stats import resolve_input_stats
from unetcli.sweeps.job import in_multirun, run_sweep_job
from unetcli.training.fixed_costs import count_from_process_start
from unetcli.training.trainer import Trainer
from unetcli.tuning.training import agreed_training_runtime


def train(cfg: DictConfig, processes: Processes) -> dict:
    """The work of one process of a (possibly distributed) training run: the tuner measures
    (or reads its cache) in the main process, every process trains with its choice.
    A null dataset.mean/std is resolved first, for the tuner's data as for training's."""
    stats = resolve_input_stats(cfg)
    if processes.is_main:
        print(stats, flush=True)
    return Trainer(cfg, processes, agreed_training_runtime(cfg, processes)).fit()


def last_checkpoint(cfg: DictConfig) -> str:
    """What to do after a stopped run: continue from its last good checkpoint, if any."""
    last = Path(cfg.paths.run_dir) / "checkpoints" / "last.pt"
    if not last.is_file():
        return "No epoch had finished, so there is no checkpoint to continue from."
    return f"The last good checkpoint is {last}; continue with trainer.resume={last}"


def run(cfg: DictConfig) -> dict:
    """Train as `cfg` says; returns the result written to result.json."""
    apply_limits(cfg.limits)
    check_config(cfg)
    # Large blocks go back to the system when freed (the file check's and cache build's
    # threads, each step's activations): the resident peak follows what is live.
    steady_memory()
    return launch(cfg, train, hint=last_checkpoint)


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> float | None:
    """Returns the best value of trainer.monitor, the figure a Hydra sweeper optimises.

    In a multirun the job may be skipped (done before) or resumed, and a failure
    is recorded for the sweep's summary instead of ending the sweep.
    """
    if in_multirun():
        return run_sweep_job(cfg, run)
    count_from_process_start()  # a time budget and the fixed costs count the imports too
    return run(cfg)["best_value"]
