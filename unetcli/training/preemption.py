"""Stopping for the cluster: a mid-epoch checkpoint on SIGTERM/SIGUSR1, and on a timer.

SLURM sends SIGTERM (preemption, scancel) or a configured SIGUSR1 shortly before
it kills a job. The handler only records the signal; the trainer finishes the
step it is in, writes `last.pt` with its position inside the epoch, and exits
with status `PREEMPTED_EXIT`. Started again (`trainer.resume=.../last.pt`, or
the same sweep folder), the run continues at the next batch of the same epoch
order. Under submitit, whose own SIGUSR2 handler requeues the job, that handler
is called after the checkpoint is written, so the requeued job resumes from it.
`trainer.checkpoint_every` (a duration: 30m, 2h, seconds) writes the same checkpoint on a timer.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from unetcli.core.durations import seconds

#: 128 + SIGTERM: what a shell reports for a job ended by SIGTERM; schedulers treat it as
#: "killed", not as a failure of the program.
PREEMPTED_EXIT = 143

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preemption:
    """Signal handlers for the length of a run, and the mid-epoch checkpoint timer."""

    def __init__(self, every: object) -> None:
        self.every = seconds(every, "trainer.checkpoint_every")
        self.last_save = time.monotonic()
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> Preemption:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only
        chained = [signal.SIGUSR2] if callable(signal.getsignal(signal.SIGUSR2)) else []
        for signum in (*STOP_SIGNALS, *chained):
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def after_step(self, save: Callable[[], str]) -> None:
        """Call `save` when a signal came or the timer is due; after a signal, stop."""
        due = self.every is not None and time.monotonic() - self.last_save >= self.every
        if self.received is None and not due:
            return
        where = save()
        self.last_save = time.monotonic()
        if self.received is not None:
            self.stop(where)

    def stop(self, where: str) -> None:
        name = signal.Signals(self.received).name
        print(f"\n{name} received: stopped after the current step; checkpoint {where}. "
              f"Continue with trainer.resume={where} (a sweep: start it again in the same "
              "hydra.sweep.dir).", flush=True)
        previous = self.previous.get(self.received)
        if callable(previous):  # submitit's requeue on SIGUSR2
            previous(self.received, None)
        raise SystemExit(PREEMPTED_EXIT)
