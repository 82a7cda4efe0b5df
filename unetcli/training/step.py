"""One training step: forward, loss, backward, optimizer; the trainer, the tuner and the plan
all take this one."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from omegaconf import DictConfig

from unetcli.config.instantiate import build


def build_optimizer(
    optimizer_cfg: DictConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer of `optimizer=` (a partial `_target_`) over `params`."""
    return build(optimizer_cfg, "optimizer")(params)
