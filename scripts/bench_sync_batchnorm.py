"""What synchronising batch norm over CPU (gloo) processes costs per training step.

Two gloo processes train `unet_small` under DistributedDataParallel on random
96x128 batches, once with each process's own BatchNorm and once with
AllReduceBatchNorm (hardware.sync_batchnorm=auto on the CPU): median seconds
per step (forward, loss, backward, Adam step), rank 0's clock, alternating the
two settings round by round so that drift on a shared machine hits both.

    OMP_NUM_THREADS=1 python scripts/bench_sync_batchnorm.py --batch 4 --steps 10 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from unetcli.distributed.batchnorm import synchronise_batchnorm
from unetcli.models import UNet


def step_times(model: torch.nn.Module, batch: int, steps: int) -> list[float]:
    net = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, masks = torch.randn(batch, 3, 96, 128), (torch.rand(batch, 1, 96, 128) > 0.5).float()
    times = []
    for _ in range(steps + 1):  # the first step warms up
        dist.barrier()
        started = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times[1:]


def _process(rank: int, folder: str, args: argparse.Namespace) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    medians: dict[str, list[float]] = {"own": [], "synchronised": []}
    for _ in range(args.rounds):
        for name in medians:
            torch.manual_seed(0)
            model = UNet(3, 1, widths=[16, 32, 64, 128, 256])
            if name == "synchronised":
                synchronise_batchnorm(model)
            medians[name].append(statistics.median(step_times(model, args.batch, args.steps)))
    if rank == 0:
        own, synced = (statistics.median(medians[n]) for n in medians)
        print(f"batch {args.batch} per process x 2 processes, unet_small, 96x128, gloo")
        print(f"  BatchNorm per process:   {own * 1000:7.1f} ms/step")
        print(f"  AllReduceBatchNorm:      {synced * 1000:7.1f} ms/step ({synced / own - 1:+.0%})")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="per process")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        mp.start_processes(_process, args=(folder, args), nprocs=2, start_method="spawn")


if __name__ == "__main__":
    main()
