"""`unet train`: fit a model, keeping checkpoints, metrics.csv and TensorBoard logs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from unetcli.config_dir import config_dir
from unetcli.errors import user_errors
from unetcli.sweeps.job import in_multirun, run_sweep_job
from unetcli.training.trainer import Trainer


def run(cfg: DictConfig) -> dict:
    """Train as `cfg` says; returns the result written to result.json."""
    return Trainer(cfg).fit()


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> float | None:
    """Returns the best value of trainer.monitor, the figure a Hydra sweeper optimises.

    In a multirun the job may be skipped (done before) or resumed, and a failure
    is recorded for the sweep's summary instead of ending the sweep.
    """
    if in_multirun():
        return run_sweep_job(cfg, run)
    return run(cfg)["best_value"]
