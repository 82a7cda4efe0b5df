"""`unet train`: fit a model, keeping checkpoints, metrics.csv and TensorBoard logs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from unetcli.config_checks import check_config
from unetcli.config_dir import config_dir
from unetcli.errors import user_errors
from unetcli.limits import apply_limits
from unetcli.training.trainer import Trainer


def run(cfg: DictConfig) -> dict:
    """Train as `cfg` says; returns the result written to result.json."""
    apply_limits(cfg.limits)
    check_config(cfg)
    return Trainer(cfg).fit()


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> float | None:
    """Returns the best value of trainer.monitor, the figure a Hydra sweeper optimises."""
    return run(cfg)["best_value"]
