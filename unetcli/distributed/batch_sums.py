"""Sums over the global batch, when each process of a job holds only a share of it.

A loss or layer that sums over the batch before it divides (batch norm's
statistics, the soft Dice of the whole batch) computes something else on a
share: 2 processes x 4 images are not 1 process x 8. `global_sum` adds a
tensor up over every process, differentiably (the backward pass adds the
gradients up the same way), so the result and its gradients are those of the
global batch. It only sums while a training step of several processes is
inside `summed_over(group)`; validation (where processes hold different
numbers of batches) and single processes keep their own sums.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist

_active: list[dist.ProcessGroup | None] = []


class _SumOverProcesses(torch.autograd.Function):
    """y = the sum of x over every process; so dL/dx = the sum of dL/dy over every process.

    (torch.distributed.nn.functional.all_reduce did this; torch deprecates it.)
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, group: object
    ) -> torch.Tensor:
        ctx.group = group
        total = x.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple:
        total = grad.contiguous().clone()
        dist.all_reduce(total, group=ctx.group)
        return total, None


def sum_over_processes(x: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """`x` added up over every process of `group` (None: all), gradients included."""
    return _SumOverProcesses.apply(x, group)


@contextlib.contextmanager
def summed_over(group: dist.ProcessGroup | None) -> Iterator[None]:
    """Within: `global_sum` adds up over the processes of `group` (a training step's loss)."""
    _active.append(group)
    try:
        yield
    finally:
        _active.pop()


def global_sum(x: torch.Tensor) -> torch.Tensor:
    """`x` summed over every process inside `summed_over`; `x` itself elsewhere."""
    if not _active or not dist.is_initialized():
        return x
    return sum_over_processes(x, _active[-1])
