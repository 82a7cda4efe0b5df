"""The CPU cores this process may run on."""

from __future__ import annotations

import os

from unetcli.errors import UnetError


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


def thread_count(value: object, key: str) -> int | None:
    """A `threads` key: a number of at least 1, or auto (None: the caller's own rule)."""
    if value == "auto":
        return None
    try:
        threads = int(value)
    except (TypeError, ValueError) as err:
        raise UnetError(f"{key} must be auto or a number of threads, got {value!r}") from err
    if threads < 1:
        raise UnetError(f"{key} must be at least 1, got {threads}")
    return threads
