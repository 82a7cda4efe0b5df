"""Learning-rate schedules torch lacks in one piece: cosine annealing after a linear warm-up."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


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
