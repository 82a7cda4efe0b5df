"""Tuning evaluate and predict: forward passes of the checkpoint's model, no threads trial.

Inference's answer can differ from training's (no backward pass, no optimizer).
The checkpoint's config gives the model, input size and batch; its weights are
not needed to time the model, so a fresh copy is built for each candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from unetcli.core.checkpoints import checkpoint_config
from unetcli.core.hardware import Runtime, resolve_hardware
from unetcli.distributed.processes import Processes
from unetcli.inference.restore import rebuild_model
from unetcli.tuning.cache import cache_key, device_name, load, save
from unetcli.tuning.candidates import Candidate, candidates
from unetcli.tuning.choice import choose
from unetcli.tuning.decision import TuningReport, measured_report, worth_caching
from unetcli.tuning.paired_timing import measure
from unetcli.tuning.settle import (
    forced_keys,
    rule_candidate,
    rule_report,
    settle,
)
from unetcli.tuning.timed import device_sync, under_flags
from unetcli.tuning.tune_budget import Budget

#: Input size timed when the checkpoint was trained on whole images of varying size.
DEFAULT_SIZE = (256, 256)


def _input(trained: DictConfig, node: DictConfig) -> tuple[int, int, int, int]:
    """(batch, channels, height, width) of a typical inference batch of this checkpoint.

    The batch is the checkpoint's own (its validation batch, else 8), not the command's:
    evaluate and predict of one checkpoint then make one choice, from one cache entry, and
    score the same pixels (a choice that differed with predict.batch_size did not).
    """
    dataset = trained.dataset
    size = node.get("window") or dataset.get("image_size") or dataset.get("crop_size")
    height, width = (size, size) if isinstance(size, int) else (size or DEFAULT_SIZE)
    batch = dataset.get("validation_batch_size") or 8
    return int(batch), int(dataset.in_channels), int(height), int(width)


def inference_runtime(cfg: DictConfig, checkpoint: str | Path | None, command: str) -> Runtime:
    """The hardware setting for `unet evaluate|predict` of `checkpoint`, measured where auto.

    An ensemble's first member stands for all of them (they share one input; the tuner
    needs a model's shape, not its weights). Without a readable checkpoint the rule is used
    (restoring it reports the problem next). Writes hardware.json into the run folder.
    """
    hw, run_dir = cfg.hardware, Path(cfg.paths.run_dir)
    base = resolve_hardware(hw)
    options = candidates(hw, base.device)
    if not hw.tune or not checkpoint or not Path(str(checkpoint)).is_file():
        report = rule_report(command, base, "hardware.tune=false: rule" if not hw.tune else "rule")
        return settle(base, rule_candidate(base), report, run_dir)
    if len(options) == 1:
        report = rule_report(command, base, f"forced by {forced_keys(hw)}")
        return settle(base, options[0], report, run_dir)
    trained = OmegaConf.create(checkpoint_config(checkpoint))
    shape = _input(trained, cfg[command])
    key = cache_key(
        {
            "mode": "inference",
            "device": device_name(base.device),
            "model": OmegaConf.to_container(trained.model, resolve=True),
            "input": list(shape),
            "candidates": [c.name for c in options],
            "tolerance": float(hw.tolerance),
        }
    )
    record = load(key)
    by_name = {c.name: c for c in options}
    if record and record.get("candidate") in by_name:
        fields = {k: v for k, v in record["report"].items() if k != "reason"}
        report = TuningReport(**{**fields, "mode": command, "source": "cache"})
        return settle(base, by_name[record["candidate"]], report, run_dir)
    chosen, report = _measure_forward(trained, base, options, shape, hw)
    report.mode = command
    if worth_caching(report):
        save(key, {"candidate": chosen.name, "report": report.to_json()})
    return settle(base, chosen, report, run_dir)


def _measure_forward(
    trained: DictConfig,
    base: Runtime,
    options: list[Candidate],
    shape: tuple[int, int, int, int],
    hw: DictConfig,
) -> tuple[Candidate, TuningReport]:
    """Time forward passes of a fresh copy of the checkpoint's model in each candidate."""
    budget = Budget(hw.tune_budget, None)
    batch = {"image": torch.randn(*shape, generator=torch.Generator().manual_seed(0))}
    steps = {}
    for c in options:
        torch.manual_seed(0)
        runtime = c.runtime(base)
        step = forward_step(rebuild_model(trained.model, "the checkpoint"), runtime)
        steps[c.name] = under_flags(runtime, lambda s=step: s(batch))
    warmup = {c.name: 3 if c.compile else 1 for c in options}
    sync = device_sync(base)
    measured = measure(steps, shape[0], budget.left, budget.rounds, warmup, sync)
    if not measured.rates:
        why = "; ".join(f"{k} {v}" for k, v in measured.dropped.items()) or (
            "hardware.tune_budget too small for one round"
        )
        return rule_candidate(base, options), rule_report("inference", base, f"not measured: {why}")
    chosen = choose(options, measured.rates, float(hw.tolerance))
    report = measured_report("inference", device_name(base.device), chosen.name, measured)
    report.seconds = round(budget.elapsed(), 2)
    return chosen, report


def forward_step(model: torch.nn.Module, runtime: Runtime) -> Callable[[dict], float]:
    """Inference's forward pass (no gradients) on `model` prepared for `runtime`."""
    model = runtime.prepare_model(model).eval()

    @torch.no_grad()
    def step(batch: dict) -> float:
        with runtime.autocast():
            logits = model(runtime.to_input(batch["image"]))
        return float(logits.float().abs().mean())

    return step


def agreed_inference_runtime(
    cfg: DictConfig, checkpoint: str | Path | None, command: str, processes: Processes
) -> Runtime:
    """`inference_runtime` measured by the main process alone; every process uses its choice.

    Processes measuring at once would slow each other down and could choose differently.
    """
    chosen = inference_runtime(cfg, checkpoint, command) if processes.is_main else None
    runtime = processes.from_main(chosen)
    runtime.apply()
    return runtime
