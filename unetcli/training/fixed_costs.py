"""What a training run spends besides its steps: start-up, checks, cache, checkpoints, summary.

A short run on a fast machine can spend a fifth of its wall time before the first step and
after the last; `unet train` prints these costs as one line at its end (`fixed costs: ...`)
so they can be seen and cut, and a time budget counts them (`run_start` is the moment the
budget starts: the process's own start for its first run, where imports and the config are
paid for).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

#: Set by the `unet train` entry point: its run's start is the process's own start.
_FROM_PROCESS_START = False


def process_started() -> float:
    """When this process started (epoch seconds), from /proc; now where that is unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime, counted after the ") "
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(int(line.split()[1]) for line in lines if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def count_from_process_start() -> None:
    """Make the next run start at the process's start (imports, config): `unet train` alone,
    not a sweep's later jobs or runs made inside another program."""
    global _FROM_PROCESS_START
    _FROM_PROCESS_START = True


def run_start() -> float:
    """The start of the run now beginning (see count_from_process_start); asked once a run."""
    global _FROM_PROCESS_START
    first, _FROM_PROCESS_START = _FROM_PROCESS_START, False
    return min(process_started(), time.time()) if first else time.time()


class FixedCosts:
    """Seconds per named cost, with how often each was paid."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last = 0.0

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1
        self.last = seconds

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Add the time the block takes to `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def line(self) -> str:
        """`fixed costs: start-up 4.1 s (...), checkpoints 0.3 s (3x), ...` for the log."""
        parts = [f"{name} {sec:.1f} s" + (f" ({self.counts[name]}x)" if self.counts[name] > 1
                                          else "")
                 for name, sec in self.seconds.items()]  # fmt: skip
        peak = peak_resident_bytes()
        memory = f"; peak resident memory {peak / 2**30:.2f} GiB" if peak else ""
        return "fixed costs: " + ", ".join(parts) + memory


def peak_resident_bytes() -> int:
    """This process's peak resident memory (VmHWM), 0 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
