"""Steps whose loss or gradient is not finite: skipped, counted, named, and survived.

A NaN at hour five must not cost the run. Such a step is skipped before the optimizer and
the grad scaler see it; the images of its batch are logged. After `trainer.max_bad_steps`
bad steps in a row the trainer restores the last good checkpoint with the learning rate
multiplied by `trainer.bad_steps_lr_factor` and goes on; if that happens again, the run stops
with one paragraph naming the images and the first module whose output was not finite (found
by forward hooks on that batch only, so a healthy run pays nothing for them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from unetcli.core.checkpoints import load_checkpoint
from unetcli.errors import UnetError
from unetcli.training.ema import trained_weights


class NonFiniteSteps:
    """Counts bad steps; `bad(...)` says what the trainer does next: skip, restore or stop."""

    def __init__(self, max_in_a_row: int, lr_factor: float) -> None:
        self.max_in_a_row = int(max_in_a_row)
        self.lr_factor = float(lr_factor)
        self.total = 0
        self.in_a_row = 0
        self.restores = 0
        self.images: list[str] = []
        #: Steps fp16's grad scaler skipped (an overflow while it finds its scale): not
        #: trained, so not counted as steps, yet no fault of the data.
        self.scaler_skipped = 0

    def good(self) -> None:
        self.in_a_row = 0

    def bad(self, step: int, what: str, names: Sequence[str]) -> str:
        """Record a bad step; returns "skip", "restore" (first run of max bad steps) or "stop"."""
        self.total += 1
        self.in_a_row += 1
        self.images = list(names)
        print(f"step {step}: the {what} is not finite; step skipped (images: {', '.join(names)})")
        if self.in_a_row < self.max_in_a_row:
            return "skip"
        self.in_a_row = 0
        self.restores += 1
        return "restore" if self.restores == 1 else "stop"

    def summary(self) -> dict:
        return {
            "nonfinite_steps": self.total,
            "nonfinite_restores": self.restores,
            "scaler_skipped_steps": self.scaler_skipped,
        }

    def stop_error(self, module: str | None, fp16: bool) -> UnetError:
        where = f"the first module whose output was not finite is {module}" if module else (
            "every module's output was finite, so the loss itself (or its target) is not")
        hint = " With fp16 on a GPU, try hardware.precision=bf16." if fp16 else ""
        return UnetError(
            f"training stopped: {self.max_in_a_row} steps in a row had a non-finite loss or "
            f"gradient, again after restoring the last good checkpoint with the learning rate "
            f"lowered ({self.total} such steps in all); {where}. Last batch's images: "
            f"{', '.join(self.images)}. Check those images and masks, lower optimizer.lr, or "
            f"set trainer.grad_clip_norm.{hint}"
        )


def gradients_finite(parameters: Sequence[nn.Parameter]) -> bool:
    """One sync: the norm of all gradients is finite."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))  # foreach kernels


def first_nonfinite_module(model: nn.Module, forward: Callable[[], object]) -> str | None:
    """Run `forward` once with hooks on every module; the name of the first non-finite output."""
    found: list[str] = []

    def hook(name: str):
        def check(_module: nn.Module, _inputs: object, output: object) -> None:
            tensor = isinstance(output, torch.Tensor) and output.is_floating_point()
            if not found and tensor and not bool(torch.isfinite(output).all()):
                found.append(name)

        return check

    handles = [m.register_forward_hook(hook(n or "model")) for n, m in model.named_modules()]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def lower_learning_rate(optimizer: torch.optim.Optimizer, scheduler: object, factor: float) -> None:
    """Multiply the learning rate by `factor`, in the optimizer and the schedule's base values."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


def batch_names(trainer, batch: dict) -> list[str]:
    """The image files of a batch (its "index" numbers the training samples)."""
    samples = trainer.data.train_samples
    return [str(samples[int(i)].image) for i in batch["index"]]


def handle_bad_step(trainer, batch: dict, images: torch.Tensor, what: str) -> None:
    """Skip (nothing to do), restore the last good checkpoint, or stop, as `trainer.nonfinite`
    decides. Called before the optimizer and scaler are touched."""
    trainer.optimizer.zero_grad(set_to_none=True)
    names = batch_names(trainer, batch)
    action = trainer.nonfinite.bad(trainer.global_step + 1, what, names)
    last = trainer.ckpt_dir / "last.pt"
    if action == "restore" and last.is_file():
        restore_last_good(trainer, last)
    elif action != "skip":
        module = first_nonfinite_module(trainer.model, diagnosis_forward(trainer, images))
        raise trainer.nonfinite.stop_error(module, trainer.scaler.is_enabled())


def diagnosis_forward(trainer, images: torch.Tensor) -> Callable[[], object]:
    """The failing forward pass as training ran it: under the run's autocast, or an fp16/bf16
    overflow would vanish in fp32 and be reported as "every module's output was finite"."""

    def forward() -> object:
        with trainer.runtime.autocast():
            return trainer.model(images)

    return forward


def restore_last_good(trainer, path) -> None:
    """Weights and optimizer from `path`, the learning rate lowered; the run goes on."""
    state = load_checkpoint(path)
    trainer.model.load_state_dict(trained_weights(state))  # not the average (trainer.ema)
    trainer.optimizer.load_state_dict(state["optimizer"])
    factor = trainer.nonfinite.lr_factor
    lower_learning_rate(trainer.optimizer, trainer.schedule.scheduler, factor)
    print(
        f"{trainer.nonfinite.max_in_a_row} non-finite steps in a row: restored {path} (epoch "
        f"{state['epoch']}) and multiplied the learning rate by {factor:g} "
        f"(trainer.bad_steps_lr_factor); going on"
    )
