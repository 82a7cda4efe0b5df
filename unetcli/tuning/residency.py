"""One candidate's model and optimizer state on the GPU at a time while candidates are timed.

Candidates alternate step by step (`paired_timing`: drift that slows a round cancels out of
the paired ratio), so each must keep what it has warmed up between its steps: weights,
optimizer state, a compiled graph. Rebuilding a candidate for each of its turns would time
first calls again (and recompile), so every candidate's step stays alive, on the host; on
CUDA the one to be timed is moved onto the GPU before its clock starts, the previous one
moved back. The GPU then holds one model and its optimizer state, as the run will, not
eight: the candidates are measured with the memory the run has, and a model that fits the
run also fits the tuner. The freed blocks stay in torch's caching allocator for the next
candidate to reuse (`empty_cache` would make every timed step allocate afresh).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from unetcli.training.step import TrainingStep

HOST = torch.device("cpu")
Move = Callable[[TrainingStep, torch.device], None]


def move_step(step: TrainingStep, device: torch.device) -> None:
    """`step`'s model (weights, buffers, gradients) and optimizer state onto `device`.

    Scalar optimizer state stays where it is: Adam keeps its step count on the host (on the
    GPU if fused or capturable), where its update expects it, and it weighs nothing.
    """
    for state in step.optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                state[key] = value.to(device)
    step.model.to(device)


class OneOnDevice:
    """Keeps at most one step on `device` (CUDA); elsewhere every step stays where it is.

    `move` is `move_step`; a test passes a stand-in that records where each step is.
    """

    def __init__(self, device: torch.device, move: Move = move_step) -> None:
        self.device = device
        self.move = move
        self.swaps = device.type == "cuda"
        self.current: TrainingStep | None = None

    def adopt(self, step: TrainingStep) -> TrainingStep:
        """A step just built on the device, sent to the host until its turn."""
        if self.swaps:
            self.move(step, HOST)
        return step

    def place(self, step: TrainingStep) -> None:
        """`step` onto the device, the one there before back to the host."""
        if not self.swaps or step is self.current:
            return
        if self.current is not None:
            self.move(self.current, HOST)
        self.current = None
        self.move(step, self.device)
        self.current = step
