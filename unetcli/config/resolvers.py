"""The resolvers conf/ uses beyond OmegaConf's own, registered before any config is composed.

`${unet_now:PATTERN}` names run folders (conf/base.yaml): Hydra's `now`, but the same moment
in every process of a distributed job. `${unet_first_set:A,B}` is A unless it is null or
empty, else B: predict.output_dir replaces Hydra's run folder (conf/predict.yaml).
`${unet_sweep_dir:}` is the absolute sweep folder in a multirun (-m) and null otherwise: the
jobs of one sweep share it as their tracking group (conf/train.yaml).
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from unetcli.distributed.env import run_time


def first_set(value: object, default: object) -> object:
    return default if value is None or value == "" else value


def sweep_dir() -> str | None:
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return str(Path(HydraConfig.get().sweep.dir).resolve())


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("unet_now", run_time, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("unet_first_set", first_set, replace=True)
    OmegaConf.register_new_resolver("unet_sweep_dir", sweep_dir, replace=True)
