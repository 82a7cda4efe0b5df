"""What a command prints as it goes: progress, and the one-screen summary at the end.

On a terminal, progress is a tqdm bar redrawn in place. Where the output goes to a file (a
SLURM log, nohup, CI) every redraw would be one more line of carriage returns, so there a
long pass writes a plain line now and then instead: at each tenth of the way, once at least
`LINE_SECONDS` have passed since the last line (short passes stay silent; the commands
print their own result lines).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from tqdm import tqdm

#: Least seconds between two progress lines written to a file.
LINE_SECONDS = 30.0


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    line = "-" * 72
    print(f"\n{line}\n{title}\n{line}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(line)


def format_metrics(metrics: dict[str, float], keys: list[str] | None = None) -> str:
    keys = keys or list(metrics)
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


def metrics_table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(f"  {k:<{width}}  {v:.4f}" for k, v in metrics.items())


class LineProgress:
    """tqdm's interface (iterate, update, set_postfix, close) writing occasional lines."""

    def __init__(
        self, iterable: Iterable | None, total: int | None, desc: str, unit: str
    ) -> None:
        self.iterable, self.desc, self.unit = iterable, desc, unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.n = 0
        self.postfix = ""
        self.started = self.last_line = time.monotonic()
        self.tenths_written = 0

    def __iter__(self) -> Iterator:
        assert self.iterable is not None
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return
        tenths = 10 * self.n // self.total
        now = time.monotonic()
        if tenths > self.tenths_written and now - self.last_line >= LINE_SECONDS:
            self.tenths_written, self.last_line = tenths, now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        seconds = now - self.started
        rate = self.n / seconds if seconds > 0 else 0.0
        extra = f", {self.postfix}" if self.postfix else ""
        return (
            f"{self.desc}: {self.n}/{self.total} {self.unit}s ({100 * self.n // self.total}%, "
            f"{seconds:.0f} s, {rate:.3g} {self.unit}s/s{extra})"
        )

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        pass

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Silent(LineProgress):
    def update(self, n: int = 1) -> None:
        self.n += n


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None,
    unit: str = "image",
    leave: bool = True,
) -> Any:
    """A progress bar for a pass (`desc` None: none at all): tqdm on a terminal, else
    `LineProgress`. Iterate it when given an iterable, else call `update(n)`."""
    if desc is None:
        return _Silent(iterable, total, "", unit)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
    return LineProgress(iterable, total, desc, unit)
