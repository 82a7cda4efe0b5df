"""Learning-rate schedules: the policy of when to step them, and a warm-up cosine torch lacks."""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from unetcli.config.instantiate import build
from unetcli.errors import UnetError


class WarmupCosineLR(LRScheduler):
    """Linear warm-up from `warmup_start_factor` * lr to lr, then cosine down to eta_min.

    `T_max` and `warmup` are counted in epochs; `steps_per_epoch` (1 when the
    schedule steps once per epoch; filled in by `unet train` for per-step
    schedules) turns them into scheduler steps. The rate is a closed form of
    the step count and these attributes, so a resumed run that changes T_max
    (a longer trainer.epochs) continues smoothly. With warmup=0 this is
    torch's CosineAnnealingLR.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        T_max: float,
        eta_min: float = 0.0,
        warmup: float = 0.0,
        warmup_start_factor: float = 0.01,
        steps_per_epoch: int | None = 1,
        last_epoch: int = -1,
    ) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        self.warmup = warmup
        self.warmup_start_factor = warmup_start_factor
        self.steps_per_epoch = steps_per_epoch or 1
        super().__init__(optimizer, last_epoch)

    def _factor_lr(self, base_lr: float, step: int) -> float:
        total = max(float(self.T_max) * self.steps_per_epoch, 1.0)
        warm = min(round(float(self.warmup) * self.steps_per_epoch), total)
        if step < warm:
            start = self.warmup_start_factor
            return base_lr * (start + (1 - start) * step / warm)
        progress = min((step - warm) / max(total - warm, 1.0), 1.0)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2

    def get_lr(self) -> list[float]:
        return [self._factor_lr(base, self.last_epoch) for base in self.base_lrs]


def group_peaks(factory: DictConfig, optimizer: torch.optim.Optimizer) -> dict:
    """One-cycle's peak rate per parameter group, scaled by each group's "lr_factor"
    (optimizer.encoder_lr_factor): one `max_lr` for all groups would undo the factor."""
    groups = optimizer.param_groups
    if "max_lr" not in factory or not any("lr_factor" in g for g in groups):
        return {}
    peaks = [float(factory.max_lr) * g.get("lr_factor", 1.0) for g in groups]
    return {"max_lr": peaks, "_convert_": "all"}  # a plain list, as torch wants


class Schedule:
    """The learning-rate policy of a run, in one place: when the scheduler steps, with what.

    `scheduler.interval` says whether the rate changes after every optimizer
    step (onecycle, cosine_warmup) or after every epoch (cosine, step,
    plateau); plateau is stepped with the monitored metric. Per-step schedules
    need the number of steps in an epoch, which only the training loader
    knows, so it is filled into the config here (and saved with it).
    `scheduler=none` gives a Schedule that never changes the rate.
    """

    def __init__(
        self, cfg: DictConfig, optimizer: torch.optim.Optimizer, loader_steps: int
    ) -> None:
        self.interval = str(cfg.scheduler.interval)
        if self.interval not in ("epoch", "step"):
            raise UnetError(f"scheduler.interval must be epoch or step, got {self.interval!r}")
        self.optimizer = optimizer
        self.epochs = int(cfg.trainer.epochs)
        factory = cfg.scheduler.factory
        self.steps_per_epoch = 1
        if factory is not None and "steps_per_epoch" in factory:
            if factory.steps_per_epoch is None:
                factory.steps_per_epoch = self._steps(cfg.trainer.max_steps_per_epoch, loader_steps)
            self.steps_per_epoch = int(factory.steps_per_epoch)
        self.factory = factory
        self.scheduler = None
        if factory is not None:
            scaled = group_peaks(factory, optimizer)
            self.scheduler = build(factory, "scheduler.factory", **scaled)(optimizer)

    def _steps(self, cap: int | None, loader_steps: int) -> int:
        """Scheduler steps per epoch: the optimizer steps for per-step schedules, else 1."""
        if self.interval != "step":
            return 1
        return max(min(loader_steps, int(cap)) if cap else loader_steps, 1)

    def after_step(self) -> None:
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def after_epoch(self, monitored: float) -> None:
        if self.scheduler is None or self.interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict | None:
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict | None, source: str) -> None:
        """Continue a saved schedule with this run's settings (e.g. a longer trainer.epochs).

        The schedule's progress (its step count) is kept; its settings come
        from this run's config, so a cosine stretches to the new length at
        once. One-cycle's total length is fixed when it starts and cannot be
        stretched: that is refused, naming `source`.
        """
        if self.scheduler is None or not state:
            return
        self.scheduler.load_state_dict(state)
        for key, value in self.factory.items():
            if not key.startswith("_") and hasattr(self.scheduler, key):
                setattr(self.scheduler, key, value)
        if isinstance(self.scheduler, WarmupCosineLR):  # a closed form: apply the new length now
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_lr()):
                group["lr"] = lr
        planned = getattr(self.scheduler, "total_steps", None)  # onecycle's fixed length
        if planned is not None and planned < self.epochs * self.steps_per_epoch:
            raise UnetError(
                f"{source} was trained with a one-cycle schedule of {planned} steps, which "
                f"cannot stretch to trainer.epochs={self.epochs}; resume with the trainer.epochs "
                "it was started with, or start a new run"
            )
