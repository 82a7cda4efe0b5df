"""The settings the tuner tries: precision x memory layout (x torch.compile on CUDA).

Forced keys (`hardware.precision=bf16`, `hardware.channels_last=true`,
`hardware.compile=false`) leave one value of their axis; the others are measured.
Candidates are listed most exact first, so the first one is the reference the
others are timed against and the winner of ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from unetcli.core.hardware import Runtime, bf16_supported
from unetcli.errors import UnetError

#: Most exact first: ties within the tolerance go to the earlier one.
EXACTNESS = ("fp32", "tf32", "bf16", "fp16")
AMP = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Candidate:
    precision: str
    channels_last: bool
    compile: bool = False

    @property
    def name(self) -> str:
        return (
            self.precision
            + ("-cl" if self.channels_last else "")
            + ("-compiled" if self.compile else "")
        )

    @property
    def exactness(self) -> int:
        """Higher is more exact: precision first, then eager over compiled."""
        return 2 * (len(EXACTNESS) - EXACTNESS.index(self.precision)) - int(self.compile)

    def runtime(self, base: Runtime, reason: str = "") -> Runtime:
        """`base` (device, workers, pinning) with this candidate's precision and layout."""
        return Runtime(
            base.device,
            AMP[self.precision],
            self.channels_last,
            base.num_workers,
            base.pin_memory,
            threads=base.threads,
            tf32=self.precision == "tf32",
            compile=self.compile,
            reason=reason,
        )


def _precisions(hw: DictConfig, device: torch.device) -> list[str]:
    forced = str(hw.precision)
    if forced != "auto":
        return [forced]
    if device.type == "cuda":
        return ["fp32", "tf32"] + (["bf16"] if bf16_supported(device) else []) + ["fp16"]
    # Without bf16 units bf16 is emulated and always several times slower: not worth a trial.
    return ["fp32", "bf16"] if bf16_supported(device) else ["fp32"]


def _compile_options(hw: DictConfig, device: torch.device, planned_steps: int | None) -> list[bool]:
    value = hw.compile
    if value not in ("auto", True, False):
        raise UnetError(f"hardware.compile must be auto, true or false, got {value!r}")
    if device.type != "cuda" or value is False:
        return [False]
    if value is True:
        return [True]
    long_enough = planned_steps is not None and planned_steps >= int(hw.compile_min_steps)
    return [False, True] if long_enough else [False]


def candidates(
    hw: DictConfig, device: torch.device, planned_steps: int | None = None
) -> list[Candidate]:
    """Every setting worth a trial here, most exact first (the hardware.* keys may force one)."""
    layouts = [False, True] if hw.channels_last == "auto" else [bool(hw.channels_last)]
    every = [
        Candidate(precision, layout, compiled)
        for compiled in _compile_options(hw, device, planned_steps)
        for precision in _precisions(hw, device)
        for layout in layouts
    ]
    return sorted(every, key=lambda c: -c.exactness)
