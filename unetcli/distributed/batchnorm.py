"""Batch norm over the whole global batch when the processes of a job run on the CPU (gloo).

With plain BatchNorm each process normalises over its own share of the batch,
so 2 processes x batch 4 is not the computation of 1 process x batch 8 (Dice
drifts by a few hundredths). torch's SyncBatchNorm fixes that, but only on
CUDA with nccl. `AllReduceBatchNorm` does the same on any backend: one
all-reduce per layer of the per-channel count, sum and sum of squares,
differentiable (`unetcli.distributed.batch_sums`: its backward all-reduces the gradient),
so gradients are those of the global batch. Sums are taken around the
running mean (the same in every process), so the variance does not lose
digits as a plain E[x^2] - E[x]^2 would.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from unetcli.distributed.batch_sums import sum_over_processes


class AllReduceBatchNorm(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training statistics cover every process's batch.

    Same parameters, buffers and state_dict keys as nn.BatchNorm2d, so a
    checkpoint loads into the plain model; in eval mode (and in a single
    process) it is nn.BatchNorm2d.
    """

    group: dist.ProcessGroup | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        self._check_input_dim(x)
        mean, var, count = self._global_statistics(x)
        self._update_running_statistics(mean, var, count)
        scale = torch.rsqrt(var + self.eps)
        shape = (1, -1, 1, 1)
        out = (x.float() - mean.view(shape)) * scale.view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    def _global_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mean and biased variance per channel over all processes' batches, and the count."""
        channels = x.shape[1]
        shift = (
            self.running_mean.detach().float()
            if self.running_mean is not None
            else x.new_zeros(channels, dtype=torch.float32)
        )
        centred = x.float() - shift.view(1, -1, 1, 1)
        count = centred.new_full((1,), centred.numel() / channels)
        local = torch.cat([centred.sum((0, 2, 3)), (centred * centred).sum((0, 2, 3)), count])
        total = sum_over_processes(local, self.group)
        n = total[-1]
        offset = total[:channels] / n
        var = (total[channels : 2 * channels] / n - offset * offset).clamp_min(0)
        return shift + offset, var, n

    @torch.no_grad()
    def _update_running_statistics(
        self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor
    ) -> None:
        """As nn.BatchNorm2d does: momentum (or the cumulative mean), unbiased running_var."""
        if not self.track_running_stats or self.running_mean is None:
            return
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / (count - 1).clamp_min(1))
        self.running_mean.mul_(1 - factor).add_(
            mean.detach().to(self.running_mean.dtype), alpha=factor
        )
        self.running_var.mul_(1 - factor).add_(
            unbiased.detach().to(self.running_var.dtype), alpha=factor
        )


def synchronise_batchnorm(model: nn.Module, group: dist.ProcessGroup | None = None) -> int:
    """Turn every nn.BatchNorm2d of `model` into AllReduceBatchNorm, in place; how many.

    The new layers take over the old ones' parameters and buffers (the same
    tensors), so an optimizer already built on the model keeps working.
    """
    converted = 0
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            model.add_module(name, _converted(child, group))
            converted += 1
        else:
            converted += synchronise_batchnorm(child, group)
    return converted


def _converted(layer: nn.BatchNorm2d, group: dist.ProcessGroup | None) -> AllReduceBatchNorm:
    new = AllReduceBatchNorm.__new__(AllReduceBatchNorm)
    new.__dict__.update(layer.__dict__)  # parameters, buffers, hooks and settings, shared
    new.group = group
    return new
