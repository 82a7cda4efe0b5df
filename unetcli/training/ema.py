"""trainer.ema: an exponential moving average of the weights, validated and checkpointed.

After every optimizer step the average moves towards the trained weights by
1 - trainer.ema_decay (torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn;
batch-norm buffers are averaged too). The average is usually the better model late in a
run, so with EMA on it is what validation scores, what best.pt and last.pt hold as
"model" (what evaluate, predict and export read), while the trained weights travel in
the checkpoint's "ema" entry for resuming.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

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
        self.averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )

    @property
    def module(self) -> nn.Module:
        """The averaged network, with the trained model's class and state_dict keys."""
        return self.averaged.module

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def checkpoint(self, model: nn.Module) -> dict:
        """The checkpoint's "model" (the average) and "ema" (the trained weights, steps)."""
        return {
            "model": self.module.state_dict(),
            "ema": {
                "trained": model.state_dict(),
                "steps": int(self.averaged.n_averaged),
                "decay": self.decay,
            },
        }

    def load(self, state: dict) -> None:
        """Continue the average of a checkpoint; one saved without EMA starts it afresh."""
        self.module.load_state_dict(state["model"])
        if state.get("ema"):
            self.averaged.n_averaged.fill_(int(state["ema"]["steps"]))


def trained_weights(state: dict) -> dict:
    """The weights training continues from: the trained ones, not their average."""
    ema = state.get("ema")
    return ema["trained"] if ema else state["model"]
