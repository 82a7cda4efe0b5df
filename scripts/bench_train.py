"""Training throughput of the U-Net under each CPU/GPU precision setting.

Backs the `hardware=auto` choice: on CPUs with bf16 units, bf16 autocast plus
channels-last is the default because it trains several times faster than fp32.

    python scripts/bench_train.py                      # 64-wide U-Net, 128x128, batch 8
    python scripts/bench_train.py --widths 16 32 64 128 256 --size 96 128
"""

from __future__ import annotations

import argparse
import time

import torch

from unetcli.hardware import Runtime, cpu_has_bf16, resolve_hardware
from unetcli.losses import BCEDiceLoss
from unetcli.models import UNet
from unetcli.task import Task


def images_per_second(runtime: Runtime, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    model = runtime.prepare_model(UNet(3, 1, args.widths))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = runtime.grad_scaler()
    loss_fn = BCEDiceLoss(Task("binary", 1))
    images = torch.randn(args.batch, 3, *args.size)
    masks = (torch.rand(args.batch, *args.size) > 0.5).long().to(runtime.device)

    def step() -> None:
        with runtime.autocast():
            logits = model(runtime.to_input(images))
        loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--size", type=int, nargs=2, default=[128, 128])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = [("fp32", False), ("fp32", True)]
    if device == "cuda" or cpu_has_bf16():
        settings += [("bf16", False), ("bf16", True)]
    if device == "cuda":
        settings.append(("fp16", True))
    auto = resolve_hardware({"device": device})
    print(
        f"U-Net widths {args.widths}, {args.size[0]}x{args.size[1]}, batch {args.batch}, "
        f"{args.steps} steps on {device} ({torch.get_num_threads()} threads); "
        f"hardware=auto picks {auto.describe()}"
    )
    baseline = None
    for precision, channels_last in settings:
        runtime = resolve_hardware(
            {"device": device, "precision": precision, "channels_last": channels_last}
        )
        rate = images_per_second(runtime, args)
        baseline = baseline or rate
        layout = "channels-last" if channels_last else "contiguous"
        print(f"  {precision:<5} {layout:<14} {rate:7.2f} images/s  ({rate / baseline:.2f}x fp32)")


if __name__ == "__main__":
    main()
