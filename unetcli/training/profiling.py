"""`debug=profile`: a torch profiler trace of a few training steps, and the slowest operators.

The trace (open it in chrome://tracing or Perfetto) and a table of the
operators that took the most time go into `<run folder>/profile/`; the table
is also printed, so a look at the terminal says where a step's time goes.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import torch
from torch.profiler import ProfilerActivity, profile, schedule

#: Steps run before recording starts, so one-time work (allocations, oneDNN
#: kernel selection) does not dominate the table.
WARMUP_STEPS = 1
TABLE_ROWS = 15


class StepProfiler:
    """Profiles `steps` training steps after a warm-up; does nothing when steps is 0."""

    def __init__(self, steps: int | None, run_dir: Path, enabled: bool = True) -> None:
        self.steps = int(steps or 0) if enabled else 0
        self.folder = run_dir / "profile"
        self._profiler: profile | None = None
        self._done = 0

    def __enter__(self) -> StepProfiler:
        if self.steps:
            activities = [ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(ProfilerActivity.CUDA)
            self._profiler = profile(
                activities=activities,
                schedule=schedule(wait=0, warmup=WARMUP_STEPS, active=self.steps, repeat=1),
                record_shapes=True,
            )
            self._profiler.__enter__()
        return self

    def step(self) -> None:
        if self._profiler is not None:
            self._profiler.step()
            self._done += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._profiler is None:
            return
        self._profiler.__exit__(exc_type, exc, tb)
        if exc_type is None:
            self._write()

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        recorded = min(max(self._done - WARMUP_STEPS, 0), self.steps)
        if not recorded:
            print(f"profile: the epoch had no step after the warm-up; nothing in {self.folder}")
            return
        sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        table = self._profiler.key_averages().table(sort_by=sort, row_limit=TABLE_ROWS)
        trace = self.folder / "trace.json"
        self._profiler.export_chrome_trace(str(trace))
        (self.folder / "operators.txt").write_text(table + "\n")
        print(f"\nprofile of {recorded} training steps (slowest operators first):\n{table}")
        print(
            f"profile: trace {trace} (open in Perfetto or chrome://tracing), table "
            f"{self.folder / 'operators.txt'}"
        )
