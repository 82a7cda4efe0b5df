"""Tuning a training run: precision and layout on the run's own training step, then threads.

`training_runtime(cfg)` is what the trainer calls instead of the plain rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unetcli.config.instantiate import build
from unetcli.core.hardware import Runtime, release_memory, resolve_hardware
from unetcli.core.task import Task
from unetcli.datasets.layouts import build_layout
from unetcli.distributed.processes import Processes
from unetcli.training.data import (
    batches_per_epoch,
    build_training_data,
    split_samples,
)
from unetcli.training.step import fresh_step
from unetcli.tuning.cache import cache_key, device_name, load, save
from unetcli.tuning.candidates import Candidate, candidates
from unetcli.tuning.choice import choose
from unetcli.tuning.decision import TuningReport, measured_report, worth_caching
from unetcli.tuning.paired_timing import Measured, Placed, measure
from unetcli.tuning.residency import OneOnDevice
from unetcli.tuning.settle import (
    forced_keys,
    rule_candidate,
    rule_report,
    settle,
)
from unetcli.tuning.threads import choose_pair, cores, measure_pairs, pair_name, thread_pairs
from unetcli.tuning.timed import device_sync, under_flags
from unetcli.tuning.tune_budget import Budget


def planned_steps(cfg: DictConfig, processes: int = 1) -> int:
    """Training steps the run plans: epochs x batches per epoch (capped by max_steps_per_epoch).

    Each of `processes` takes its share of the epoch, batched as the training loader
    batches it (`training/data.py`), so a 2-process run takes half the steps: counted
    as one, the tuning budget's share and the compile decision would be judged on a
    run twice as long.
    """
    layout = build_layout(cfg.dataset)
    train, _ = split_samples(cfg, layout)
    per_epoch = max(1, batches_per_epoch(len(train), int(cfg.trainer.batch_size), processes))
    cap = cfg.trainer.max_steps_per_epoch
    return int(cfg.trainer.epochs) * (min(per_epoch, int(cap)) if cap else per_epoch)


def agreed_training_runtime(cfg: DictConfig, processes: Processes) -> Runtime:
    """`training_runtime` measured (or read from the cache) by the main process alone; every
    process uses its choice, with its process-wide settings applied."""
    chosen = training_runtime(cfg, processes.world_size) if processes.is_main else None
    runtime = processes.from_main(chosen)
    runtime.apply()
    return runtime


def training_runtime(cfg: DictConfig, processes: int = 1) -> Runtime:
    """The run's hardware setting: measured (or cached) where `hardware.*` is auto.

    `processes`: how many processes train together (their steps are shared).

    Writes hardware.json into the run folder (the trainer logs the same as TensorBoard text); the
    Runtime's `describe()` is the start line, with the reason in brackets.
    """
    hw, run_dir = cfg.hardware, Path(cfg.paths.run_dir)
    base = resolve_hardware(hw)
    if not hw.tune:
        report = rule_report("train", base, "hardware.tune=false: rule")
        return settle(base, rule_candidate(base), report, run_dir)
    planned = planned_steps(cfg, processes)
    options = candidates(hw, base.device, planned)
    pairs = thread_pairs(hw, cores(), base.device.type == "cuda")
    if len(options) == 1 and len(pairs) == 1:
        report = rule_report("train", base, f"forced by {forced_keys(hw)}")
        report.threads, report.workers = pairs[0]
        return settle(base, options[0], report, run_dir)
    key = cache_key(_key_fields(cfg, base, options, pairs))
    chosen, report = _cached(key, options)
    if report is None:
        chosen, report = _measure_training(cfg, base, options, pairs, planned)
        if worth_caching(report):
            save(key, {"candidate": chosen.name, "report": report.to_json()})
    return settle(base, chosen, report, run_dir)


def _key_fields(cfg: DictConfig, base: Runtime, options: list[Candidate], pairs: list) -> dict:
    dataset = cfg.dataset
    return {
        "mode": "train",
        "device": device_name(base.device),
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "input": [dataset.in_channels, dataset.crop_size or dataset.image_size or dataset.root],
        "batch": int(cfg.trainer.batch_size),
        "candidates": [c.name for c in options],
        "pairs": [pair_name(p) for p in pairs],
        "loss": OmegaConf.to_container(cfg.loss, resolve=True),
        "optimizer": str(cfg.optimizer.get("_target_")),
        "tolerance": float(cfg.hardware.tolerance),
    }


def _cached(key: str, options: list[Candidate]) -> tuple[Candidate | None, TuningReport | None]:
    record = load(key)
    by_name = {c.name: c for c in options}
    if not record or record.get("candidate") not in by_name:
        return None, None
    fields = {k: v for k, v in record["report"].items() if k != "reason"}
    try:
        report = TuningReport(**{**fields, "source": "cache"})
    except TypeError:
        return None, None
    if not report.rates:  # a cached "not measured": the next run must not pay for it again
        report.note = f"cache: {report.note}"
    return by_name[record["candidate"]], report


def _measure_training(
    cfg: DictConfig, base: Runtime, options: list[Candidate], pairs: list, planned: int
) -> tuple[Candidate, TuningReport]:
    """Time the candidates' training steps on a real batch, then the thread/worker pairs.

    The budget's clock starts at the first timed step (building the data and
    the models, and the imports a first optimizer pulls in, are the run's own
    start-up). With thread pairs to try, the precision phase leaves them the
    time of one visit each, when that is at most 40% of the budget. Compiling
    is tried for the eager winner only, in what is left of the budget.
    """
    budget = Budget(cfg.hardware.tune_budget, planned)
    eager = [c for c in options if not c.compile] or options
    too_short = (
        f"hardware.tune_budget ({budget.describe()}) is less than one round of "
        f"{len(options)} steps"
    )
    # Each candidate's untimed first step and one timed step: a short run's share may not
    # hold them whatever a step takes (e.g. 3% of 23 steps), so nothing is built.
    if budget.too_short_for(2 * len(eager)):
        report = rule_report("train", base, f"not measured: {too_short}")
        return rule_candidate(base, options), report
    loss_fn = build(cfg.loss, "loss", task=Task.from_config(cfg.dataset))
    data = build_training_data(cfg, replace(base, num_workers=0, pin_memory=False), loss_fn)
    batch = next(iter(data.train_loader))
    budget.start()
    work = _Work(cfg, base, loss_fn, batch, budget)
    measured, steps = work.time(eager, lambda s: budget.left(s) - _thread_reserve(pairs, s, budget))
    if not measured.rates:
        why = "; ".join(f"{k} {v}" for k, v in measured.dropped.items()) or too_short
        return rule_candidate(base, options), rule_report("train", base, f"not measured: {why}")
    tolerance = float(cfg.hardware.tolerance)
    chosen = choose(eager, measured.rates, tolerance)
    if eager is not options and replace(chosen, compile=True) in options:
        del steps
        chosen, steps = _try_compiling(work, chosen, measured, tolerance)
    report = measured_report("train", device_name(base.device), chosen.name, measured)
    report.tolerance = tolerance
    step, seconds = steps[chosen.name], len(batch["image"]) / measured.rates[chosen.name]
    del steps
    work.resident.place(step)
    runtime = chosen.runtime(base)
    with runtime.flags():
        _tune_threads(report, pairs, (data.train_loader, step, runtime), seconds, budget)
    report.seconds = round(budget.elapsed(), 2)
    return chosen, report


@dataclass
class _Work:
    """What every timing of training candidates shares: the run, its loss, a batch, the budget."""

    cfg: DictConfig
    base: Runtime
    loss_fn: object
    batch: dict
    budget: Budget
    resident: OneOnDevice | None = None

    def time(self, options: list[Candidate], limit) -> tuple[Measured, dict]:
        """Each candidate's fresh step timed under its own flags; (the measure, the steps).

        On CUDA one candidate's model and optimizer state is on the GPU at a time
        (`residency`), the one being timed; `self.resident.place(step)` puts another there.
        """
        self.resident = OneOnDevice(self.base.device)  # lets go of the previous phase's
        release_memory(self.base.device)  # models and optimizer states
        runtimes = {c.name: c.runtime(self.base) for c in options}
        steps = {}
        for name, runtime in runtimes.items():
            with runtime.flags():
                steps[name] = self.resident.adopt(fresh_step(self.cfg, runtime, self.loss_fn))
        timed = {
            name: Placed(
                under_flags(runtimes[name], lambda s=s: s(self.batch).loss),
                lambda s=s: self.resident.place(s),
            )
            for name, s in steps.items()
        }
        warmup = {c.name: 3 if c.compile else 1 for c in options}
        rounds = self.budget.rounds
        sync = device_sync(self.base)
        return measure(timed, len(self.batch["image"]), limit, rounds, warmup, sync), steps


def _try_compiling(
    work: _Work, eager: Candidate, measured: Measured, tolerance: float
) -> tuple[Candidate, dict]:
    """The eager winner against its compiled self, in what is left of the budget.

    Compiling every candidate (up to 8, 3 warm-ups each) could take many minutes while
    other processes wait; compiling changes the speed of a setting, hardly their order.
    The compiled rate joins `measured` scaled to the first phase's reference.
    """
    compiled = replace(eager, compile=True)
    second, steps = work.time([eager, compiled], work.budget.left)
    for name, why in second.dropped.items():
        measured.dropped.setdefault(name, why)
    if compiled.name not in second.rates or eager.name not in second.rates:
        return eager, steps
    scale = measured.rates[eager.name] / second.rates[eager.name]
    measured.rates[compiled.name] = second.rates[compiled.name] * scale
    measured.rounds += second.rounds
    return choose([eager, compiled], second.rates, tolerance), steps


def _thread_reserve(pairs: list, step_seconds: float, budget: Budget) -> float:
    """Seconds the precision phase leaves for the thread trial: what one visit of every
    pair needs, if that is at most 40% of the budget (else the trial is skipped)."""
    if len(pairs) < 2:
        return 0.0
    needed = sum(workers + 3 for _, workers in pairs) * step_seconds
    return needed if needed <= 0.4 * budget.total(step_seconds) else 0.0


def _tune_threads(
    report: TuningReport, pairs: list, work: tuple, step_seconds: float, budget: Budget
) -> None:
    """Fill in threads and workers: measured when every pair fits the budget, else the rule's."""
    report.threads, report.workers = pairs[0]
    if len(pairs) < 2:
        return
    loader, step, runtime = work
    rates = measure_pairs(
        pairs, loader, step, runtime, step_seconds, lambda: budget.left(step_seconds)
    )
    if not rates:
        report.note = (
            f"threads/workers not measured within hardware.tune_budget ({budget.describe()}): "
            f"{pair_name(pairs[0])} by rule"
        )
        return
    report.threads, report.workers = choose_pair(pairs, rates, report.tolerance)
    report.thread_rates = {k: round(v, 2) for k, v in rates.items()}
