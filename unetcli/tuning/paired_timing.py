"""Timing candidate steps against each other on a machine that others share.

Steps are alternated one by one (the order rotating each round), so a slow
spell of the machine hits every candidate alike, and each candidate's speed is
the median over rounds of its time *paired* with the reference's time of the
same round: drift that slows a whole round cancels out of the ratio.
A step returns its loss (or output statistic); a candidate whose value is not
finite, or whose step raises, is out.

The clock is read only after `sync()` (`unetcli.core.hardware.sync` of the device):
a GPU step returns before its backward pass and optimizer step have run, and
without the wait that work would be timed as the next candidate's.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Step = Callable[[], float]
Sync = Callable[[], None]


def no_sync() -> None:
    """The CPU's sync: its work is done when a step returns."""


@dataclass
class Measured:
    """Images per second of each surviving candidate, and why the others are out."""

    rates: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    seconds: float = 0.0
    #: Median seconds of one step of the reference (the first candidate), for the budget.
    reference_step: float | None = None


@dataclass(frozen=True)
class Placed:
    """A step with work to do before its clock starts: `place` (e.g. its model and optimizer
    state moved onto the GPU, the previous candidate's moved off), waited for, untimed."""

    call: Step
    place: Callable[[], None]

    def __call__(self) -> float:
        return self.call()


def _run(step: Step, sync: Sync) -> tuple[float, str | None]:
    """(seconds until the step's device work is done, why it is out or None)."""
    start = time.perf_counter()
    try:
        if isinstance(step, Placed):
            step.place()
            sync()
            start = time.perf_counter()
        value = step()
        sync()
    except (RuntimeError, ValueError, NotImplementedError) as err:
        return time.perf_counter() - start, f"failed: {str(err).splitlines()[0][:120]}"
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return seconds, f"not finite ({value})"
    return seconds, None


def _warm_up(
    steps: dict[str, Step], warmup: dict[str, int], limit: Callable[[float], float], sync: Sync
) -> tuple[dict[str, float], dict[str, str]]:
    """First calls (allocation, oneDNN/cuDNN plans, compilation); each candidate's last
    call's seconds, and why candidates are out.

    The budget covers the warm-up: a call starts only while `limit` leaves time (the
    first candidate's first call always runs). A compiled candidate takes 3 calls of
    up to a minute each; one that cannot finish them in time is out, not waited for.
    """
    last: dict[str, float] = {}
    dropped: dict[str, str] = {}
    for name, step in steps.items():
        for call in range(warmup.get(name, 1)):
            if last and limit(min(last.values())) <= 0:
                dropped[name] = f"warm-up call {call + 1} not started: budget used"
                break
            seconds, why = _run(step, sync)
            last[name] = seconds
            if why:
                dropped[name] = why
                break
    return last, dropped


def _fastest_step(times: dict[str, list[float]], fallback: dict[str, float]) -> float:
    """The fastest candidate's median step so far (its warm-up call before the first round).

    The run will take the fastest candidate's steps, so a share of the planned run is
    a share of that candidate's time; a mean over the candidates would let a slow
    one (fp32 on a CPU with bf16 units) stretch the budget past its share.
    """
    medians = [statistics.median(t) for t in times.values() if t]
    return min(medians or [fallback[name] for name in times] or [0.0])


def measure(
    steps: dict[str, Step],
    images_per_step: int,
    limit: Callable[[float], float],
    rounds: int,
    warmup: dict[str, int] | None = None,
    sync: Sync = no_sync,
) -> Measured:
    """Alternate the candidates' steps while the budget allows; paired-median images/s.

    `steps` is ordered most exact first; the first survivor is the reference.
    At most `rounds` rounds are run; one for a single candidate, which has
    nothing to be compared with (one round times its step, e.g. for the budget
    of a thread trial after it).
    After the warm-up, `limit(step_seconds)` gives the seconds left given the
    fastest candidate's step time (it may depend on it: a share of the planned
    run), asked again after every round with the better estimate. The first
    round runs if any time is left (the warm-up's first calls overstate a
    step's time); every further round only if the last one's time still fits.
    If the warm-up alone used the budget, nothing is measured (`rounds == 0`).
    `sync` waits for the device before each step's clock is read.
    """
    started = time.perf_counter()
    out = Measured()
    first_calls, out.dropped = _warm_up(steps, warmup or {}, limit, sync)
    alive = [name for name in steps if name not in out.dropped]
    times: dict[str, list[float]] = {name: [] for name in alive}
    round_seconds = 0.0  # the last round's; the first round needs only some time left
    for r in range(rounds if len(steps) > 1 else 1):
        deadline = time.perf_counter() + limit(_fastest_step(times, first_calls))
        if not alive or time.perf_counter() + round_seconds > deadline:
            break
        round_start = time.perf_counter()
        order = alive[r % len(alive) :] + alive[: r % len(alive)]
        for name in order:
            seconds, why = _run(steps[name], sync)
            if why:
                out.dropped[name] = why
                alive.remove(name)
                del times[name]
            else:
                times[name].append(seconds)
        out.rounds += 1
        round_seconds = time.perf_counter() - round_start
    out.seconds = time.perf_counter() - started
    if out.rounds and alive:
        _paired_rates(times, alive, images_per_step, out)
    return out


def _paired_rates(
    times: dict[str, list[float]], alive: list[str], images: int, out: Measured
) -> None:
    reference = alive[0]
    ref = times[reference]
    out.reference_step = statistics.median(ref)
    ref_rate = images / out.reference_step
    for name in alive:
        ratios = [r / t for r, t in zip(ref, times[name], strict=True)]
        out.rates[name] = ref_rate * statistics.median(ratios)
