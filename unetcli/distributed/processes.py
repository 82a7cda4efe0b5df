"""Which process writes, and how a figure becomes one figure for the whole run.

A run is one process (`SingleProcess`) or several (`DistributedProcesses`,
set up by `unetcli.distributed`). `is_main` guards every file the run writes
(checkpoints, TensorBoard, metrics.csv, result.json, the summary); `gather`
joins per-image values from every process, in rank order, before they are
averaged, so validation figures equal those of one process; `from_main`
shares a decision (early stopping, a plateau step) made once; `shard` gives
each process a contiguous block of images in whole batches, so that batch
contents, and with them the figures, do not depend on the number of processes;
`wrap` synchronises batch norm and `whole_batch` makes a training step's batch
sums (the soft Dice) those of the global batch, so the training does not either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from unetcli.distributed.batch_sums import summed_over
from unetcli.distributed.batchnorm import synchronise_batchnorm
from unetcli.distributed.devices import ddp_options

T = TypeVar("T")


def block(count: int, parts: int, part: int, unit: int = 1) -> range:
    """The `part`-th of `parts` contiguous blocks of range(count), cut at multiples of `unit`."""
    units = -(-count // max(unit, 1))
    start, stop = units * part // parts, units * (part + 1) // parts
    return range(min(start * unit, count), min(stop * unit, count))


class Processes:
    """What a command's work may ask of the processes it runs in (the type it is handed).

    The answers here are those of one process, which writes everything and whose values
    are all there are; `DistributedProcesses` answers for one of several.
    """

    is_main: bool = True
    rank: int = 0
    world_size: int = 1

    def gather(self, values: Sequence[T]) -> list[T]:
        """Every process's values, in one list (here: this process's own)."""
        return list(values)

    def gather_objects(self, value: T) -> list[T]:
        return [value]

    def mean(self, total: float, count: int) -> float:
        """The mean of a sum and a count taken over every process."""
        return total / max(count, 1)

    def from_main(self, value: T) -> T:
        """The main process's value, in every process."""
        return value

    def all_true(self, flag: bool) -> bool:
        """True when `flag` is true in every process (a step skipped by one is skipped by all)."""
        return flag

    def main_first(self) -> contextlib.AbstractContextManager:
        """Run a block in the main process before the others (e.g. generating a dataset)."""
        return contextlib.nullcontext()

    def wait_for_all(self) -> None:
        """Return once every process has got here (e.g. each wrote its share of files)."""

    def shard(self, count: int, unit: int = 1) -> range:
        """This process's contiguous block of `count` items."""
        return range(count)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module a training step calls (DistributedDataParallel when there are several)."""
        return model

    def whole_batch(self) -> contextlib.AbstractContextManager:
        """Around a training step's loss: batch sums (soft Dice) over every process's share."""
        return contextlib.nullcontext()

    def describe(self, batch_size: int) -> str:
        return f"batch {batch_size} (one process)"


class SingleProcess(Processes):
    """The one process of a run."""


class DistributedProcesses(Processes):
    """One of `world_size` processes of a torch.distributed job (see `unetcli.distributed`)."""

    def __init__(
        self,
        placement: Any,
        backend: str,
        gradient_group: dist.ProcessGroup | None,
        sync_batchnorm: bool,
    ) -> None:
        self.rank, self.world_size = placement.rank, placement.world_size
        self.local_rank = placement.local_rank
        self.is_main = placement.rank == 0
        self.backend, self.group, self.sync_batchnorm = backend, gradient_group, sync_batchnorm
        self.synchronised = 0  # batch norm layers wrap() synchronised

    def gather_objects(self, value: T) -> list[T]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def gather(self, values: Sequence[T]) -> list[T]:
        return [v for part in self.gather_objects(list(values)) for v in part]

    def mean(self, total: float, count: int) -> float:
        parts = self.gather_objects((total, count))
        return sum(t for t, _ in parts) / max(sum(c for _, c in parts), 1)

    def from_main(self, value: T) -> T:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_true(self, flag: bool) -> bool:
        # Otherwise one process would skip a backward pass that DDP waits for in the others.
        votes = torch.tensor([int(bool(flag))])
        dist.all_reduce(votes, op=dist.ReduceOp.MIN)
        return bool(votes.item())

    def wait_for_all(self) -> None:
        dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        if not self.is_main:
            dist.barrier()
        try:
            yield
        finally:
            if self.is_main:
                dist.barrier()

    def shard(self, count: int, unit: int = 1) -> range:
        return block(count, self.world_size, self.rank, unit)

    def whole_batch(self) -> contextlib.AbstractContextManager:
        return summed_over(self.group)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        self.synchronised = self._synchronise_batchnorm(model) if self.sync_batchnorm else 0
        on_cuda = next(model.parameters()).device.type == "cuda"
        device = torch.cuda.current_device() if on_cuda else None
        options = ddp_options(on_cuda, device, bool(self.sync_batchnorm))
        return DistributedDataParallel(model, process_group=self.group, **options)

    def _synchronise_batchnorm(self, model: torch.nn.Module) -> int:
        """torch's SyncBatchNorm with nccl; ours on gloo (SyncBatchNorm is CUDA-only)."""
        if self.backend == "nccl":
            layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model, self.group)  # in place below root
            return layers
        return synchronise_batchnorm(model, self.group)

    def describe(self, batch_size: int) -> str:
        if self.synchronised:
            norm = f"batch norm synchronised over {self.world_size} processes"
        elif self.sync_batchnorm:
            norm = "no batch norm layers"
        else:
            norm = "batch norm per process (hardware.sync_batchnorm=false)"
        return (
            f"batch {batch_size} per process x {self.world_size} processes = "
            f"{batch_size * self.world_size} per step ({self.backend}; {norm})"
        )
