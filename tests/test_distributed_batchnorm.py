"""Sums over the global batch in 2 real gloo processes: batch norm and the batch Dice.

AllReduceBatchNorm is nn.BatchNorm2d over the joined batch. The processes get
unequal shares (3 and 5 images), so the statistics must weigh each process by
its count; two steps check the running statistics with a momentum and with the
cumulative mean (momentum=None). The soft Dice of a training step
(`summed_over`) is that of the joined batch, gradients included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from unetcli.core.task import Task
from unetcli.distributed.batch_sums import summed_over
from unetcli.distributed.batchnorm import AllReduceBatchNorm, synchronise_batchnorm
from unetcli.losses import SoftDiceLoss

SHARES = (3, 5)


def layers() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, momentum=None))
    for bn in (net[0], net[2]):
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.5, 0.5)
    return net


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two steps of (input, weights of the loss), off-centre like real activations."""
    g = torch.Generator().manual_seed(1)
    size = (sum(SHARES), 4, 5, 6)
    return [(torch.randn(size, generator=g) * 3 + 7, torch.randn(size, generator=g)) for _ in "ab"]


def run_steps(net: nn.Module, part: slice) -> dict[str, list[torch.Tensor]]:
    """Forward and backward of each step on the images in `part`; what to compare."""
    seen: dict[str, list[torch.Tensor]] = {"out": [], "grad_in": [], "grad_params": []}
    for x, w in batches():
        x = x[part].clone().requires_grad_(True)
        net.zero_grad()
        out = net(x)
        (out * w[part]).sum().backward()
        seen["out"].append(out.detach())
        seen["grad_in"].append(x.grad)
        seen["grad_params"].append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    net.eval()
    seen["eval"] = [net(batches()[0][0][part])]
    seen["dice"] = batch_dice(part)
    seen["state"] = [v.float().flatten() for v in net.state_dict().values()]
    return seen


def batch_dice(part: slice) -> list[torch.Tensor]:
    """The soft Dice loss of a training step on the images in `part`, and its input gradient."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn((sum(SHARES), 1, 5, 6), generator=g)[part].requires_grad_(True)
    masks = (torch.rand((sum(SHARES), 5, 6), generator=g) > 0.6).long()[part]
    with summed_over(None):
        loss = SoftDiceLoss(Task("binary", 1))(logits, masks)
    loss.backward()
    return [loss.detach(), logits.grad]


def _process(rank: int, folder: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    net = layers()
    assert synchronise_batchnorm(net) == 2
    start = sum(SHARES[:rank])
    seen = run_steps(net, slice(start, start + SHARES[rank]))
    torch.save(seen, Path(folder) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_two_gloo_processes_normalise_as_one_batch_norm_over_the_joined_batch(tmp_path):
    mp.start_processes(_process, args=(str(tmp_path),), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    one = run_steps(layers(), slice(None))
    close = {"rtol": 1e-4, "atol": 1e-4}
    for key in ("out", "grad_in", "eval"):
        for step, expected in enumerate(one[key]):
            joined = torch.cat([ranks[0][key][step], ranks[1][key][step]])
            torch.testing.assert_close(joined, expected, **close, msg=f"{key}, step {step}")
    # Each process holds the gradient of its own images' loss; DDP sums (averages) them.
    for step, expected in enumerate(one["grad_params"]):
        summed = ranks[0]["grad_params"][step] + ranks[1]["grad_params"][step]
        torch.testing.assert_close(summed, expected, **close, msg=f"parameters, step {step}")
    # The batch Dice: the joined batch's value in each process, and its gradient (each of the
    # 2 processes back-propagates the whole loss; DDP averages the processes' gradients).
    for rank in ranks:
        torch.testing.assert_close(rank["dice"][0], one["dice"][0])
    joined = torch.cat([r["dice"][1] for r in ranks]) / 2
    torch.testing.assert_close(joined, one["dice"][1])
    # Running mean, unbiased running variance and batch counts: the same in both processes.
    for rank in ranks:
        for got, expected in zip(rank["state"], one["state"], strict=True):
            torch.testing.assert_close(got, expected, **close)


def test_conversion_keeps_the_parameters_buffers_and_checkpoint_keys():
    net = layers()
    keys, params = list(net.state_dict()), list(net.parameters())
    running = net[0].running_mean
    assert synchronise_batchnorm(net) == 2
    assert isinstance(net[0], AllReduceBatchNorm) and isinstance(net[2], AllReduceBatchNorm)
    assert net[2].momentum is None and net[0].running_mean is running
    # An optimizer built before the conversion still steps the model's parameters.
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))
    assert list(net.state_dict()) == keys
    # Without a process group (one process) it is nn.BatchNorm2d.
    x = torch.randn(4, 4, 3, 3)
    torch.testing.assert_close(net(x), layers()(x))
