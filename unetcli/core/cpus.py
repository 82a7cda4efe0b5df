"""The CPU cores this process may run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, not the machine's count.

    Under `taskset`, a Slurm allocation or a pinned container, `os.cpu_count()`
    still counts every core of the machine, so rules built on it start more
    threads and loader workers than the process has cores. Where the platform
    cannot tell (macOS has no affinity call), the machine's count.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
