"""From a tuning decision to the run's Runtime: the rule's fallback, forced keys, the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig

from unetcli.core.hardware import Runtime
from unetcli.tuning.cache import device_name
from unetcli.tuning.candidates import Candidate
from unetcli.tuning.decision import TuningReport, write_report

FORCEABLE = ("precision", "channels_last", "compile", "num_workers", "threads")


def forced_keys(hw: DictConfig) -> str:
    """`hardware.precision=bf16 hardware.channels_last=true`: the keys not left at auto."""
    shown = {k: str(hw[k]).lower() if isinstance(hw[k], bool) else hw[k] for k in FORCEABLE}
    return " ".join(f"hardware.{k}={v}" for k, v in shown.items() if v != "auto")


def rule_candidate(base: Runtime, candidates: list[Candidate] | None = None) -> Candidate:
    """The setting the rule picks (`resolve_hardware`, forced keys included); when
    `candidates` are given and it is not among them, the most exact candidate."""
    rule = Candidate(base.precision, base.channels_last, base.compile)
    return rule if candidates is None or rule in candidates else candidates[0]


def rule_report(mode: str, base: Runtime, note: str) -> TuningReport:
    chosen = Candidate(base.precision, base.channels_last, base.compile).name
    return TuningReport(
        mode,
        device_name(base.device),
        chosen,
        "rule",
        threads=base.threads,
        workers=base.num_workers,
        note=note,
    )


def settle(base: Runtime, chosen: Candidate, report: TuningReport, run_dir: Path) -> Runtime:
    """The run's Runtime for `chosen`, with the report written and process settings applied."""
    workers = base.num_workers if report.workers is None else report.workers
    threads = base.threads if report.threads is None else report.threads
    base = replace(base, num_workers=workers, threads=threads)
    runtime = chosen.runtime(base, reason=report.reason())
    write_report(run_dir, report)
    runtime.apply()
    return runtime
