"""Torch threads against loader workers, measured together with the real data pipeline.

Each loader worker decodes and augments with one torch thread (set in every
worker by `unetcli.datasets.loaders.loader_settings`); the main process computes with
`torch.set_num_threads` threads. Too few workers starve the model, too many
take its cores: the pairs are timed end to end (real loader feeding the chosen
step), each visit with a fresh loader, in forward then reverse order.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from unetcli.core.cpus import usable_cores
from unetcli.core.hardware import Runtime, rule_workers
from unetcli.datasets.loaders import loader_settings

Pair = tuple[int, int]  # (torch threads, loader workers)
BatchStep = Callable[[dict], object]  # one training step on a loader batch


def cores() -> int:
    """The threads this process may compute with: torch's count (it honours OMP_NUM_THREADS)."""
    return min(torch.get_num_threads(), usable_cores())


def pair_name(pair: Pair) -> str:
    return f"{pair[0]}t/{pair[1]}w"


def thread_pairs(hw: DictConfig, n_cores: int, on_cuda: bool = False) -> list[Pair]:
    """The rule's pair (all cores, `rule_workers`) first, then the alternatives: no
    workers, or where the rule has none, one worker; on CUDA also half the rule's
    workers, so the range from none to `cores - 1` is tried where a GPU waits to be fed."""
    auto_workers = rule_workers(n_cores, on_cuda)
    forced_threads = None if hw.threads == "auto" else int(hw.threads)
    forced_workers = None if hw.num_workers == "auto" else int(hw.num_workers)
    other = 0 if auto_workers else min(1, n_cores - 1)
    half = [auto_workers // 2] if on_cuda and auto_workers > 2 else []
    workers = [forced_workers] if forced_workers is not None else [auto_workers, *half, other]
    pairs: list[Pair] = []
    for w in workers:
        choices = [forced_threads] if forced_threads else [n_cores, max(1, n_cores - w)]
        pairs += [(t, w) for t in choices]
    return list(dict.fromkeys(pairs))


def _visit(loader: DataLoader, step: BatchStep, steps: int, deadline: float) -> float | None:
    """Images/s over `steps` batches after the first (which pays the workers' start).

    None if the loader ran dry or the deadline passed first (the visit stops there).
    """
    batches = iter(loader)
    try:
        step(next(batches))
        start, images = time.perf_counter(), 0
        for batch in itertools.islice(batches, steps):
            if time.perf_counter() > deadline:
                return None
            step(batch)
            images += len(batch["image"])
    except StopIteration:
        return None
    finally:
        del batches
    seconds = time.perf_counter() - start
    return images / seconds if images else None


def measure_pairs(
    pairs: list[Pair],
    train_loader: DataLoader,
    step: BatchStep,
    runtime: Runtime,
    step_seconds: float,
    seconds_left: Callable[[], float],
) -> dict[str, float]:
    """Images/s end to end of each (threads, workers) pair, while `seconds_left()` allows.

    A visit is expected to take (workers + 3) steps of `step_seconds`; it starts
    only if it fits. Returns {} unless every pair was visited at least once (a
    partial answer would favour whichever pair happened to be timed).
    """
    rates: dict[str, list[float]] = {}
    previous = torch.get_num_threads()
    try:
        for pair in pairs + pairs[::-1]:
            if seconds_left() < (pair[1] + 3) * step_seconds:
                break
            torch.set_num_threads(pair[0])
            settings = loader_settings(replace(runtime, num_workers=pair[1]))
            loader = DataLoader(
                train_loader.dataset,
                batch_size=train_loader.batch_size,
                sampler=train_loader.sampler,
                drop_last=train_loader.drop_last,
                **{**settings, "persistent_workers": False},
            )
            rate = _visit(loader, step, pair[1] + 2, time.perf_counter() + seconds_left())
            if rate is not None:
                rates.setdefault(pair_name(pair), []).append(rate)
    finally:
        torch.set_num_threads(previous)
    if len(rates) < len(pairs):
        return {}
    return {name: statistics.mean(values) for name, values in rates.items()}


def choose_pair(pairs: list[Pair], rates: dict[str, float], tolerance: float) -> Pair:
    """The fastest pair; within the tolerance the earlier (today's rule first) wins."""
    best = max(rates.values())
    return next(p for p in pairs if rates.get(pair_name(p), 0.0) >= best * (1 - tolerance))
