"""Candidates' steps as the measure times them: each under its own flags, the device waited for.

A candidate is only measured right if it computes as the run will: "fp32" with TF32
off and "tf32" with it on (torch's default turns cuDNN TF32 on for both), cuDNN
autotuning as the run sets it. The flags are set around each call, since the
candidates alternate step by step, and restored after it.
"""

from __future__ import annotations

from collections.abc import Callable

from unetcli.core.hardware import Runtime, sync
from unetcli.tuning.paired_timing import Step, Sync


def under_flags(runtime: Runtime, call: Callable[[], float]) -> Step:
    """`call` run with `runtime`'s CUDA flags in force (read back inside it, they are its own)."""

    def step() -> float:
        with runtime.flags():
            return call()

    return step


def device_sync(runtime: Runtime) -> Sync:
    """The wait the measure does before it reads the clock: for `runtime`'s device."""
    return lambda: sync(runtime.device)
