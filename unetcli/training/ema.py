"""trainer.ema: an exponential moving average of the weights, validated and checkpointed.

After every optimizer step the average moves towards the trained weights by 1 - decay
(torch.optim.swa_utils.AveragedModel; batch-norm buffers are averaged too), where the
decay warms up to trainer.ema_decay as min(ema_decay, (1 + n) / (10 + n)) after n steps,
as timm's and TensorFlow's averages do: at a fixed 0.999 the average of an 800-step run
would still hold 0.999^800 = 45% of the random initial weights. The average is usually
the better model late in a run, so with EMA on it is what validation scores, what
best.pt and last.pt hold as "model" (what evaluate, predict and export read), while the
trained weights travel in the checkpoint's "ema" entry for resuming.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from unetcli.errors import UnetError


class WeightAverage:
    """The moving average of `model`'s weights (a copy of the model, on its device)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise UnetError(
                f"trainer.ema_decay must lie strictly between 0 and 1, got {decay}; 0.999 "
                "averages over about the last 1000 steps"
            )
        self.decay = float(decay)
        self.steps = 0  # n_averaged as a Python int: the decay needs a number, not a tensor
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)

    def current_decay(self) -> float:
        """The decay of the next update: warmed up, so that early steps are not drowned by
        the random initial weights."""
        return min(self.decay, (1 + self.steps) / (10 + self.steps))

    @torch.no_grad()
    def _average(self, averaged: list, current: list, _n_averaged: torch.Tensor) -> None:
        weight = 1.0 - self.current_decay()
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (batch norm's num_batches_tracked) follow the model
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    @property
    def module(self) -> nn.Module:
        """The averaged network, with the trained model's class and state_dict keys."""
        return self.averaged.module

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)
        self.steps += 1

    def checkpoint(self, model: nn.Module) -> dict:
        """The checkpoint's "model" (the average) and "ema" (the trained weights, steps)."""
        return {
            "model": self.module.state_dict(),
            "ema": {
                "trained": model.state_dict(),
                "steps": self.steps,
                "decay": self.decay,
            },
        }

    def load(self, state: dict) -> None:
        """Continue the average of a checkpoint; one saved without EMA starts it afresh."""
        self.module.load_state_dict(state["model"])
        if state.get("ema"):
            self.steps = int(state["ema"]["steps"])
            self.averaged.n_averaged.fill_(self.steps)


def trained_weights(state: dict) -> dict:
    """The weights training continues from: the trained ones, not their average."""
    ema = state.get("ema")
    return ema["trained"] if ema else state["model"]
