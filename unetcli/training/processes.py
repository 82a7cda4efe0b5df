"""Which process writes, and how a figure becomes one figure for the whole run.

Today a run is one process. Distributed training adds ranks here and nowhere
else: `is_main` guards every file the run writes (checkpoints, TensorBoard,
metrics.csv, result.json, the summary), and `gather` joins per-image values
from every process before they are averaged, so validation figures stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence


class SingleProcess:
    """The one process of a run: it writes everything, and its values are all there are."""

    is_main: bool = True
    world_size: int = 1

    def gather(self, values: Sequence[float]) -> list[float]:
        """Every process's values, in one list (here: this process's own)."""
        return list(values)

    def mean(self, total: float, count: int) -> float:
        """The mean of a sum and a count taken over every process."""
        return total / max(count, 1)
