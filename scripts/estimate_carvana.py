"""Estimate the Kaggle guide's times on a GPU, from what can be measured without one.

The guide is docs/guides/kaggle.md.

Nothing here runs on a GPU. What is measured on this machine:
  1. the floating-point work of one forward pass of conf/experiment/carvana_unet.yaml's model
     (the 64-wide U-Net, 31 M parameters) at 320x480, counted by torch's FlopCounterMode;
  2. the CPU work per Carvana-size (1918x1280) image that no GPU takes over: decoding the JPEG
     and resizing it to 320x480 (loader workers), and, for a submission row, resizing the
     probabilities back to 1918x1280, thresholding and run-length encoding (predict.threads);
  3. the CPU's own forward throughput at 320x480 (fp32), as a check of how much of its peak a
     real forward pass reaches.
What is assumed: the GPU's SUSTAINED rate on this network (--gpu-tflops, several values), the
number of loader workers and finishing threads (--cpus), and training = 3 forward passes.
Each stage's estimate is the larger of its GPU time and its CPU time (they overlap).

Usage: python scripts/estimate_carvana.py [--gpu-tflops 25 100] [--cpus 8] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_predict import HEIGHT, WIDTH, car_image, car_mask  # noqa: E402

from unetcli.core.placement import Geometry, restore_size  # noqa: E402
from unetcli.models.contract import build_model  # noqa: E402
from unetcli.submission.rle import rle_encode  # noqa: E402

SIZE = (320, 480)  # conf/experiment/carvana_unet.yaml
TRAIN, TEST, FOLDS, EPOCHS = 5088, 100064, 5, 20  # Carvana; the experiment's epochs


def model() -> torch.nn.Module:
    cfg = OmegaConf.load(REPO / "conf" / "model" / "unet.yaml")
    cfg.in_channels, cfg.num_classes = 3, 1
    return build_model(cfg).eval()


def forward_flops(net: torch.nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, *SIZE))
    return float(counter.get_total_flops())


def cpu_forward_seconds(net: torch.nn.Module, repeats: int) -> float:
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        net(x)
        started = time.perf_counter()
        for _ in range(repeats):
            net(x)
    return (time.perf_counter() - started) / (2 * repeats)


def median_ms(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def cpu_costs(repeats: int) -> dict[str, float]:
    """Milliseconds per image of the CPU steps (one core each)."""
    rng = np.random.default_rng(0)
    mask = car_mask(rng)
    jpeg = cv2.imencode(".jpg", car_image(rng, mask), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    small = cv2.resize(mask.astype(np.float32), SIZE[::-1])[None]
    geometry = Geometry(HEIGHT, WIDTH, (0, 0, SIZE[1], SIZE[0]))
    full = restore_size(small, geometry)
    return {
        "decode": median_ms(lambda: cv2.imdecode(jpeg, cv2.IMREAD_COLOR), repeats),
        "resize in": median_ms(lambda: cv2.resize(image, SIZE[::-1], cv2.INTER_AREA), repeats),
        "resize back": median_ms(lambda: restore_size(small, geometry), repeats),
        "threshold + RLE": median_ms(lambda: rle_encode((full[0] > 0.5).astype(np.uint8)), repeats),
    }


def hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def stages(flops: float, ms: dict[str, float], cpus: int) -> list[tuple[str, float, float]]:
    """(stage, forward passes, CPU seconds) of the walk-through's steps."""
    read = (ms["decode"] + ms["resize in"]) / 1000 / cpus
    finish = (ms["resize back"] + ms["threshold + RLE"]) / 1000 / cpus
    per_fold_train = EPOCHS * TRAIN * (FOLDS - 1) / FOLDS
    per_fold_val = EPOCHS * TRAIN / FOLDS
    return [
        ("train 5 folds (20 epochs each)", FOLDS * (3 * per_fold_train + per_fold_val),
         FOLDS * (per_fold_train + per_fold_val) * read),
        ("evaluate out-of-fold, no TTA", TRAIN, TRAIN * (read + finish)),
        ("evaluate out-of-fold, 8 views", 8 * TRAIN, TRAIN * (read + finish)),
        ("predict 5 members, no TTA", FOLDS * TEST, TEST * (read + finish)),
        ("predict 5 members, hflip (2 views)", 2 * FOLDS * TEST, TEST * (read + finish)),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-tflops", type=float, nargs="+", default=[25.0, 100.0])
    parser.add_argument("--cpus", type=int, default=8, help="loader workers + finishing threads")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    net = model()
    flops = forward_flops(net)
    cpu_s = cpu_forward_seconds(net, max(1, args.repeats // 5))
    ms = cpu_costs(args.repeats)
    print(f"model: {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, "
          f"{flops / 1e9:.1f} GFLOP per forward pass at {SIZE[0]}x{SIZE[1]} (measured count)")
    print(f"this CPU ({os.cpu_count()} threads), fp32 forward: {1 / cpu_s:.2f} images/s = "
          f"{flops / cpu_s / 1e9:.0f} GFLOP/s achieved")
    print("CPU work per 1918x1280 image (ms, one core): "
          + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
    print(f"\nestimates (assumed: {args.cpus} CPU cores for loading/finishing; training = 3 "
          "forward passes; GPU rate sustained on this network):")
    header = "| stage | forward passes | CPU side | " + " | ".join(
        f"GPU at {t:g} TFLOP/s" for t in args.gpu_tflops) + " |"  # fmt: skip
    print(header)
    print("|---" * (3 + len(args.gpu_tflops)) + "|")
    for name, passes, cpu in stages(flops, ms, args.cpus):
        cells = [hours(max(passes * flops / (t * 1e12), cpu)) for t in args.gpu_tflops]
        print(f"| {name} | {passes / 1e6:.2f} M | {hours(cpu)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
