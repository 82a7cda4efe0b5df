"""trainer.accumulate_batches: one optimizer step over the gradients of K loader batches.

A batch that does not fit in memory is split: K batches of b images each give one
optimizer step with the gradient of all K x b images (each batch's loss weighted by its
share of the images), the effective batch K x b (x processes). Everything counted in
steps (the schedule, trainer.max_steps_per_epoch, checkpoints inside an epoch, the time
budget) counts optimizer steps. Losses that are means over pixels or images match one
batch of K x b; a soft Dice over the whole batch is taken per loader batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator


class BatchGroups:
    """The training loader's batches, `count` at a time (the last group may be shorter)."""

    def __init__(self, loader: Iterable[dict], count: int) -> None:
        # At least 1: the config check (config/schema.py) refuses less before a run starts.
        self.loader = loader
        self.count = int(count)

    def __len__(self) -> int:
        return math.ceil(len(self.loader) / self.count)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[dict]]:
        group: list[dict] = []
        for batch in self.loader:
            group.append(batch)
            if len(group) == self.count:
                yield group
                group = []
        if group:
            yield group


def describe(count: int, batch_size: int, processes: int) -> str | None:
    """The start line of an accumulating run: the effective batch of one optimizer step."""
    if count <= 1:
        return None
    effective = count * batch_size * processes
    across = f" x {processes} processes" if processes > 1 else ""
    return (
        f"gradient accumulation: {count} batches of {batch_size}{across} per optimizer step, "
        f"effective batch {effective} (trainer.accumulate_batches={count})"
    )
