"""Each stage of `unet predict` on a Carvana-size image, per image and per core, and what the
whole Carvana test set (100,064 images of 1918x1280) takes on one 16-core GPU machine.

Measured here, one thread each, median of --repeats: the stages of predict.mode=resize at
320x480 with the default 64-wide U-Net: decode (simplejpeg and OpenCV; also simplejpeg's
DCT-domain decode straight to 1/4 size), resize to 320x480, the forward pass (this CPU, fp32,
for reference), resize back to 1918x1280, threshold, RLE, and the gzip write of the row.
Computed: the GPU's forward rate from the counted FLOPs at --gpu-share of --gpu-peak-tflops,
and the machine's rate with its cores shared among the CPU stages in proportion to their
cost (every CPU stage but the gzip writer runs on several threads or loader workers in
`unet predict`; the writer is one thread, so its rate is a ceiling of its own).

    python scripts/bench_predict_stages.py [--repeats 15] [--cores 16]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import statistics
import sys
import tempfile
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

from unetcli.core import jpeg  # noqa: E402
from unetcli.core.placement import Geometry, restore_size  # noqa: E402
from unetcli.models.contract import build_model  # noqa: E402
from unetcli.submission.rle import rle_encode  # noqa: E402

SIZE = (320, 480)
TEST_IMAGES = 100_064


def median_ms(work, repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def cpu_stages(path: Path, repeats: int) -> dict[str, float]:
    """Milliseconds per image of each CPU stage, one thread."""
    rgb = jpeg.read_jpeg(path, 3)
    small = cv2.resize(rgb, SIZE[::-1], interpolation=cv2.INTER_LINEAR)
    probs = cv2.resize(car_mask(np.random.default_rng(1)).astype(np.float32), SIZE[::-1])[None]
    geometry = Geometry(HEIGHT, WIDTH, (0, 0, SIZE[1], SIZE[0]))
    full = restore_size(probs, geometry)
    labels = (full[0] > 0.5).astype(np.uint8)
    row = f"{path.name},{rle_encode(labels)}\n".encode()

    def gzip_row() -> None:
        with gzip.GzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=6, mtime=0) as f:
            f.write(row * 64)  # a member of 64 rows, as the writer groups them

    return {
        "decode (OpenCV, BGR->RGB)": median_ms(
            lambda: cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), repeats
        ),
        "decode (simplejpeg)": median_ms(lambda: jpeg.read_jpeg(path, 3), repeats),
        "decode at 1/4 (simplejpeg DCT)": median_ms(
            lambda: jpeg.decode_reduced(path, 3, *SIZE), repeats
        ),
        "resize to 320x480": median_ms(
            lambda: cv2.resize(rgb, SIZE[::-1], interpolation=cv2.INTER_LINEAR), repeats
        ),
        "normalise + to tensor": median_ms(
            lambda: torch.from_numpy(((small - 120.0) / 60.0).astype(np.float32)), repeats
        ),
        "resize back to 1918x1280": median_ms(lambda: restore_size(probs, geometry), repeats),
        "threshold": median_ms(lambda: (full[0] > 0.5).astype(np.uint8), repeats),
        "RLE": median_ms(lambda: rle_encode(labels), repeats),
        "gzip write (per row)": median_ms(gzip_row, max(3, repeats // 3)) / 64,
        "row bytes": float(len(row)),
    }


def forward(repeats: int) -> tuple[float, float]:
    """(GFLOP of one forward pass at 320x480, this CPU's fp32 ms per image)."""
    cfg = OmegaConf.load(REPO / "unetcli" / "conf" / "model" / "unet.yaml")
    cfg.in_channels, cfg.num_classes = 3, 1
    net = build_model(cfg).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, *SIZE))
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        ms = median_ms(lambda: net(x), max(1, repeats // 5))
    return counter.get_total_flops() / 1e9, ms


def machine(ms: dict[str, float], gflop: float, args) -> None:
    """The 16-core GPU machine: the cores shared among the CPU stages, the GPU computed."""
    decode = "decode at 1/4 (simplejpeg DCT)" if args.reduced else "decode (simplejpeg)"
    load = ms[decode] + (0 if args.reduced else ms["resize to 320x480"])
    load += ms["normalise + to tensor"]
    finish = ms["resize back to 1918x1280"] + ms["threshold"] + ms["RLE"]
    write = ms["gzip write (per row)"]
    gpu = args.gpu_share * args.gpu_peak_tflops * 1e3 / gflop  # images/s
    cores = args.cores - 1  # the main process drives the GPU
    cpu = 1000 * cores / (load + finish)  # images/s with every stage sharing the cores
    writer = 1000 / write
    rate = min(gpu, cpu, writer)
    bound = {gpu: "the GPU's forward pass", cpu: "the CPU stages", writer: "the gzip writer"}
    print(f"\nper image on one core: load {load:.1f} ms ({decode} + resize + normalise), "
          f"finish {finish:.1f} ms (resize back + threshold + RLE), gzip write {write:.3f} ms")
    print(f"GPU forward: {gflop:.1f} GFLOP x images / ({args.gpu_share:.0%} x "
          f"{args.gpu_peak_tflops:g} TFLOP/s) = {gpu:.0f} images/s")
    print(f"CPU stages on {cores} cores: {cores} x 1000 / ({load:.1f} + {finish:.1f}) ms = "
          f"{cpu:.0f} images/s; loader workers : finishing threads = {load:.1f} : {finish:.1f} "
          f"-> {round(cores * load / (load + finish))} : {round(cores * finish / (load + finish))}")
    print(f"gzip writer, one thread: {writer:.0f} images/s")
    seconds = TEST_IMAGES / rate
    print(f"Carvana test set, {TEST_IMAGES:,} images: {TEST_IMAGES:,} / {rate:.0f} images/s = "
          f"{seconds:.0f} s ({seconds / 60:.1f} min), bounded by {bound[rate]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cores", type=int, default=16, help="CPU cores of the GPU machine")
    parser.add_argument("--gpu-peak-tflops", type=float, default=989.0)
    parser.add_argument("--gpu-share", type=float, default=0.4)
    parser.add_argument("--blur", type=int, default=9, help="Gaussian blur of the test image")
    parser.add_argument("--reduced", action="store_true",
                        help="extrapolate with the DCT-domain 1/4 decode")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        path = Path(tmp) / "car.jpg"
        # Blurred: the generated noise and stripes would make a file several times the size
        # of Carvana's own (test.zip: 7.5 GB for 100,064 files, about 75 KB each).
        image = cv2.GaussianBlur(car_image(rng, car_mask(rng)), (args.blur, args.blur), 0)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"generated 1918x1280 JPEG: {path.stat().st_size / 1e3:.0f} KB")
        ms = cpu_stages(path, args.repeats)
    gflop, cpu_forward = forward(args.repeats)
    print(f"stages of unet predict, one 1918x1280 JPEG, one thread, median of {args.repeats}:")
    for name, value in ms.items():
        if name != "row bytes":
            print(f"  {name:<34}{value:8.2f} ms")
    print(f"  {'forward, this CPU, fp32, batch 1':<34}{cpu_forward:8.0f} ms  ({gflop:.1f} GFLOP)")
    print(f"  submission row: {ms['row bytes']:.0f} bytes")
    machine(ms, gflop, args)


if __name__ == "__main__":
    main()
