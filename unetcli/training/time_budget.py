"""`trainer.time_budget`: fit the run (and its learning-rate schedule) into a wall-clock budget.

After a few steps the run measures its own speed and sets `trainer.epochs` to
what fits in the time left, validation included (estimated from the step time
until the first epoch has been validated, then measured); the schedule's length
follows, so cosine and one-cycle end with the last epoch. At the end of every
epoch the plan is made again with the measured epoch time, and the run stops
cleanly (checkpoints and result written) when the next epoch would not fit.
A resumed run continues with the budget that is left (the time spent is saved
in its checkpoints) and measures again: it may run on another machine.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from torch.optim.lr_scheduler import OneCycleLR

from unetcli.config.instantiate import build
from unetcli.core.durations import seconds as duration
from unetcli.training.schedulers import Schedule, WarmupCosineLR

#: Steps timed before the first plan (after one untimed warm-up step).
PROBE_STEPS = 3
#: A forward pass over a validation batch, in training steps (backward and update left out).
VALIDATION_SHARE = 0.5

def resize_schedule(schedule: Schedule, cfg: Any, epochs: int) -> None:
    """Give the schedule the new run length; its progress (step count) is kept.

    Cosine is a closed form of T_max; one-cycle fixes its phases when it is made,
    so it is made again for the new length and moved to the step it had reached.
    """
    cfg.trainer.epochs = epochs
    schedule.epochs = epochs
    scheduler = schedule.scheduler
    if isinstance(scheduler, WarmupCosineLR):
        scheduler.T_max = epochs
    elif isinstance(scheduler, OneCycleLR):
        done = scheduler.last_epoch
        scheduler = build(schedule.factory, "scheduler.factory")(schedule.optimizer)
        scheduler.last_epoch = done
        schedule.scheduler = scheduler
    else:
        return
    _set_closed_form_lr(schedule, scheduler)


def _set_closed_form_lr(schedule: Schedule, scheduler: Any) -> None:
    """Give the optimizer the learning rate the scheduler's formula has at its current step."""
    with warnings.catch_warnings():  # get_lr outside step() warns; it is the closed form here
        warnings.simplefilter("ignore", UserWarning)
        lrs = scheduler.get_lr()
    for group, lr in zip(schedule.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs


def finish_one_cycle(schedule: Schedule) -> None:
    """Put a one-cycle schedule at its last step when the budget cut its last epoch short.

    No step follows a cut (the run ends with that epoch), so this changes no update; it
    makes the checkpoint say the cycle is over, its learning rate at the final value,
    instead of a few steps short of it.
    """
    scheduler = schedule.scheduler
    if isinstance(scheduler, OneCycleLR) and scheduler.last_epoch < scheduler.total_steps:
        scheduler.last_epoch = scheduler.total_steps
        _set_closed_form_lr(schedule, scheduler)


def budget_for(trainer: Any) -> TimeBudget | None:
    """The run's TimeBudget from trainer.time_budget (None without one)."""
    seconds = duration(trainer.opts.time_budget, "trainer.time_budget")
    if seconds is None:
        return None
    data, cap = trainer.data, trainer.opts.max_steps_per_epoch
    steps = min(len(trainer.batches), int(cap)) if cap else len(trainer.batches)  # optimizer steps
    val_batches = len(data.val_loader) if data.val_loader is not None else 0
    # Set-up counts too, and under `unet train` the imports and config before it.
    spent = trainer.budget_spent + time.time() - trainer.costs.started
    budget = TimeBudget(seconds, spent, steps, val_batches)
    print(f"time budget: {seconds:.0f} s ({budget.left():.0f} s left); "
          f"trainer.epochs is set after {PROBE_STEPS + 1} steps", flush=True)
    return budget


class TimeBudget:
    """The plan of a run with a time budget: how many epochs fit in the time left."""

    def __init__(self, seconds: float, spent: float, steps_per_epoch: int, val_batches: int):
        self.seconds = seconds
        self.deadline = time.time() + seconds - spent
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.val_batches = val_batches
        self.steps = 0
        self.timer: float | None = None
        self.step_time: float | None = None
        self.epoch_time: float | None = None
        self.cut = False
        #: Seconds of the last checkpoint write: each epoch ends with one, after its timing.
        self.tail = 0.0

    def cut_epoch(self) -> bool:
        """True when the next step and the validation after it would end past the deadline.

        The trainer then ends this epoch early (validation, checkpoints,
        result.json) and the run with it: an epoch longer than the budget is cut.
        """
        if self.step_time is not None and not self.cut:
            end = time.time() + self.step_time + self.validation_time() + self.tail
            self.cut = end > self.deadline
        return self.cut

    def spent(self) -> float:
        return self.seconds - self.left()

    def left(self) -> float:
        return self.deadline - time.time()

    def after_step(self, trainer: Any, epoch: int, steps: int) -> None:
        """Time the first steps of this process; then make the first plan."""
        self.steps += 1
        if self.steps == 1:
            self.timer = time.perf_counter()
        elif self.steps == 1 + PROBE_STEPS:
            self.step_time = (time.perf_counter() - self.timer) / PROBE_STEPS
            left_in_epoch = (self.steps_per_epoch - steps) * self.step_time
            self.plan(trainer, epoch, left_in_epoch + self.validation_time())

    def validation_time(self) -> float:
        return self.val_batches * self.step_time * VALIDATION_SHARE

    def after_epoch(self, trainer: Any, epoch: int, seconds: float) -> None:
        """Plan again with the epoch time just measured (training and validation)."""
        if self.cut:
            print(f"time budget: epoch {epoch} was cut short to end before the budget "
                  f"({self.left():.0f} s left)", flush=True)
            if int(trainer.opts.epochs) != epoch:
                resize_schedule(trainer.schedule, trainer.cfg, epoch)
                trainer.config["trainer"]["epochs"] = epoch
            finish_one_cycle(trainer.schedule)
            return
        if self.steps <= PROBE_STEPS:  # epochs shorter than the probe: time them whole
            self.step_time = seconds / (self.steps_per_epoch + self.val_batches * VALIDATION_SHARE)
        self.epoch_time = seconds
        self.plan(trainer, epoch, 0.0)

    def plan(self, trainer: Any, epoch: int, to_finish_epoch: float) -> None:
        """Set trainer.epochs to the epochs that end before the deadline (at least this one)."""
        per_epoch = self.epoch_time or (
            self.steps_per_epoch * self.step_time + self.validation_time()
        )
        per_epoch += self.tail
        left = self.deadline - time.time() - to_finish_epoch - self.tail
        epochs = epoch + max(0, int(left // per_epoch))
        if epochs != int(trainer.opts.epochs):
            resize_schedule(trainer.schedule, trainer.cfg, epochs)
            trainer.config["trainer"]["epochs"] = epochs  # what the checkpoints record
            print(f"time budget: {left:.0f} s left after epoch {epoch}'s end at {per_epoch:.1f} "
                  f"s per epoch: trainer.epochs={epochs}", flush=True)
