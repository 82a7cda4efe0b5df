"""Which sizes and models to try, in the order of preference, and when to stop measuring.

Sizes go from the largest (the images' own size, at most plan.max_side) down,
never so small that the smallest objects fall under plan.min_object_side
pixels; at each size the widest model comes first. The first pair that trains
plan.min_epochs epochs within the budget wins: resolution is kept before width.
If none does (or plan.measure_s runs out first), the one that trains most epochs
(then: most images/s) wins.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from unetcli.core.hardware import Runtime
from unetcli.errors import UnetError
from unetcli.plan.trials import Measurement, measure


@dataclass
class Candidate:
    """One (size, model) with its measurements, and the epochs its best batch allows."""

    model: str
    size: tuple[int, int]
    crop: bool = False  # size is a random crop at full resolution, not a resize
    runs: list[Measurement] = field(default_factory=list)
    batch: Measurement | None = None
    epochs: int = 0


def sizes(
    median: tuple[int, int], smallest_area: float, plan: DictConfig
) -> tuple[list[tuple[int, int]], bool]:
    """Candidate (height, width), largest first, multiples of 16, objects kept visible.

    When even plan.max_side would shrink the smallest objects under
    plan.min_object_side, the candidates are square crops at full resolution
    (True), halving from plan.max_side.
    """
    height, width = median
    scale = min(1.0, float(plan.max_side) / max(height, width))
    floor = float(plan.min_object_side) / math.sqrt(smallest_area) if smallest_area else 0.0
    if scale < min(1.0, floor):
        side, crops = int(plan.max_side) // 16 * 16, []
        while side >= max(16, int(plan.min_side)) and side <= min(height, width):
            crops.append((side, side))
            side //= 2
        return crops or [(16, 16)], True
    return _resized(height, width, scale, floor, plan), False


def _resized(height: int, width: int, scale: float, floor: float, plan: DictConfig) -> list:
    found: list[tuple[int, int]] = []
    while True:
        size = (max(16, round(height * scale / 16) * 16), max(16, round(width * scale / 16) * 16))
        if found and (scale < floor or min(size) < int(plan.min_side)):
            return found
        if size not in found:
            found.append(size)
        if min(size) <= 16:
            return found
        scale /= 2


def batches_for(cfg: DictConfig, candidate: Candidate, runtime: Runtime, limits: dict) -> None:
    """Measure growing batches until memory, step time, the set's size or no gain stops it."""
    total = (
        torch.cuda.get_device_properties(runtime.device).total_memory
        if (runtime.device.type == "cuda")
        else None
    )
    best = 0.0
    for batch in cfg.plan.batch_sizes:
        if batch > max(1, limits["train_images"]) or time.monotonic() > limits["deadline"]:
            return
        run = measure(
            cfg,
            candidate.model,
            limits["models"][candidate.model],
            runtime,
            (int(batch), *candidate.size),
        )
        candidate.runs.append(run)
        limits["bar"].update(1)
        if run.failed or run.step_s > float(cfg.plan.max_step_s):
            return
        if total and run.peak_bytes > (1 - float(cfg.plan.memory_margin)) * total:
            return
        if total is None and run.images_per_s < 1.05 * best:
            return  # a CPU is saturated: larger batches only cost memory
        best = max(best, run.images_per_s)


#: A conservative rate of a checkpoint write (serialisation and disk), in bytes per second.
CHECKPOINT_BYTES_PER_S = 200e6


def settle(candidate: Candidate, cfg: DictConfig, limits: dict) -> None:
    """The batch to train with (within 10% of the best rate, smallest) and its epochs."""
    total = limits["device_memory"]
    margin = (1 - float(cfg.plan.memory_margin)) * total if total else None
    fits = [
        r for r in candidate.runs if not r.failed and (margin is None or r.peak_bytes <= margin)
    ]
    if not fits:
        return
    top = max(r.images_per_s for r in fits)
    candidate.batch = min((r for r in fits if r.images_per_s >= 0.9 * top), key=lambda r: r.batch)
    per_epoch = limits["train_images"] / candidate.batch.images_per_s
    per_epoch *= 1 + float(cfg.plan.validation_share)
    # Each epoch ends with a checkpoint write, and the run starts up once (imports, the
    # file check, the data cache): a plan that left them out ran 7% over its budget.
    per_epoch += candidate.batch.state_bytes / CHECKPOINT_BYTES_PER_S
    epochs = int((limits["budget_s"] - limits.get("start_up_s", 0.0)) // per_epoch)
    candidate.epochs = max(1, min(int(cfg.plan.max_epochs), epochs))


def _hopeless(candidate: Candidate, rates: dict[str, float], need: float) -> bool:
    """Even twice the pixel rate measured for this model at a larger size would be too slow."""
    area = candidate.size[0] * candidate.size[1]
    return candidate.model in rates and 2 * rates[candidate.model] / area < need


def _try(cfg: DictConfig, candidate: Candidate, runtime: Runtime, limits: dict) -> bool:
    """Measure and settle one candidate; False when no batch of it ran."""
    batches_for(cfg, candidate, runtime, limits)
    settle(candidate, cfg, limits)
    return candidate.batch is not None


def search(
    cfg: DictConfig, runtime: Runtime, limits: dict, candidates: list[Candidate]
) -> tuple[Candidate, list[Candidate]]:
    """Measure candidates in order of preference; the first with enough epochs is chosen.

    A candidate is skipped when the same model, measured at a larger size, could
    not reach plan.min_epochs here even at twice its pixel rate; when measuring
    time runs out, or nothing qualifies, the cheapest candidate (last: narrowest
    model, smallest size) is still measured, as the fallback that trains most.
    """
    limits["device_memory"] = (
        torch.cuda.get_device_properties(runtime.device).total_memory
        if (runtime.device.type == "cuda")
        else None
    )
    need = float(cfg.plan.min_epochs) * limits["train_images"] / limits["budget_s"]
    need *= 1 + float(cfg.plan.validation_share)
    done: list[Candidate] = []
    rates: dict[str, float] = {}  # model -> best pixels/s measured
    with tqdm(desc="measuring training steps", unit="run", disable=None) as bar:
        limits["bar"] = bar
        for candidate in candidates[:-1]:
            if time.monotonic() > limits["deadline"] and done:
                break
            if _hopeless(candidate, rates, need) or not _try(cfg, candidate, runtime, limits):
                continue
            done.append(candidate)
            pixels = candidate.batch.images_per_s * candidate.size[0] * candidate.size[1]
            rates[candidate.model] = max(rates.get(candidate.model, 0.0), pixels)
            if candidate.epochs >= int(cfg.plan.min_epochs):
                return candidate, done
        limits["deadline"] = float("inf")  # the fallback is always measured
        if _try(cfg, candidates[-1], runtime, limits):
            done.append(candidates[-1])
    if not done:
        raise UnetError(
            "no candidate model trained a single step on this device (see plan."
            "batch_sizes and plan.models); free memory or try hardware=cpu"
        )
    return max(done, key=lambda c: (c.epochs, c.batch.images_per_s)), done
