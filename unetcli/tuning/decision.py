"""What the tuner chose and why: the start line and hardware.json (TensorBoard via the trainer)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TuningReport:
    """One tuning decision; `source` is measured, cache, forced or rule."""

    mode: str
    device: str
    chosen: str
    source: str
    rates: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    workers: int | None = None
    thread_rates: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    seconds: float = 0.0
    tolerance: float = 0.0
    note: str = ""

    def reason(self) -> str:
        """The parenthesis of the start line, e.g. `measured: fp32-cl 35.7, bf16 27.3 img/s`."""
        if self.source in ("measured", "cache") and self.rates:
            ranked = sorted(self.rates.items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{name} {rate:.1f}" for name, rate in ranked)
            out = f"{self.source}: {text} img/s"
            if self.thread_rates:
                pairs = sorted(self.thread_rates.items(), key=lambda kv: -kv[1])
                out += "; threads/workers " + ", ".join(f"{k} {v:.1f}" for k, v in pairs)
            if self.dropped:
                out += "; out: " + ", ".join(f"{k} {v}" for k, v in self.dropped.items())
            return f"{out}; {self.note}" if self.note else out
        return self.note

    def to_json(self) -> dict:
        return {**asdict(self), "reason": self.reason()}


def write_report(run_dir: Path, report: TuningReport) -> None:
    """hardware.json in the run folder (written under a temporary name, then renamed).

    A training run also shows the choice as TensorBoard text (tag `hardware`), written
    by the trainer's own run log so that the run keeps one event file.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".hardware.json.tmp"
    tmp.write_text(json.dumps(report.to_json(), indent=2))
    os.replace(tmp, run_dir / "hardware.json")


def measured_report(mode: str, device: str, chosen: str, measured: Any) -> TuningReport:
    """The report of a choice made by measuring (`measured`: rates, dropped, rounds)."""
    return TuningReport(
        mode,
        device,
        chosen,
        "measured",
        rates={k: round(v, 2) for k, v in measured.rates.items()},
        dropped=measured.dropped,
        rounds=measured.rounds,
    )


def worth_caching(report: TuningReport) -> bool:
    """A measured answer, or a "not measured" one: a budget too small for the candidates
    (compiled ones above all) is as small on the next run, which must not pay again."""
    return report.source == "measured" or report.note.startswith("not measured")
