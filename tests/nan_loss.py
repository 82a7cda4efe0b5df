"""A loss that is not finite on chosen training steps: `loss=` YAML can point at it
(loss._target_=tests.nan_loss.NaNOnSteps +loss.steps=[2,3]), so the real trainer meets a NaN."""

from __future__ import annotations

from torch import Tensor, nn

from unetcli.core.task import Task
from unetcli.losses import BCELoss


class NaNOnSteps(nn.Module):
    """BCE, but NaN on the training calls numbered in `steps` (1-based; validation not counted)."""

    def __init__(self, task: Task, steps: list[int], pos_weight: float | None = None) -> None:
        super().__init__()
        self.inner = BCELoss(task, pos_weight)
        self.steps = set(steps)
        self.calls = 0

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        loss = self.inner(logits, target)
        if not logits.requires_grad:
            return loss
        self.calls += 1
        return loss * float("nan") if self.calls in self.steps else loss
