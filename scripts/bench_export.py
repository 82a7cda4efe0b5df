"""Benchmark the exported model: onnxruntime (CPU) beside torch fp32 and bf16.

The default model (conf/model/unet.yaml: the 64-wide padded U-Net, 31 M
parameters, random weights) is wrapped as `unet export` wraps it (uint8
pixels in, normalisation and sigmoid inside) and exported to ONNX; then the
same uint8 batch runs through

  - onnxruntime, CPUExecutionProvider, every core (intra-op threads = cores);
  - torch fp32 (inference mode, every core), weights contiguous as exported;
  - torch fp32 and bf16 autocast with channels-last weights, what `unet predict`
    runs on a CPU (hardware=auto picks bf16 + channels-last where the CPU has bf16).

Input: Carvana size. By default the size `unet predict` feeds the network for
the Carvana recipe (dataset.image_size 320x480, predict mode resize); pass
--size 1280x1918 for full-resolution images (mode full; minutes per image
on 2 cores). Reports images/s of each, the largest probability difference
between onnxruntime and torch fp32, the CPU name and the load average.

Usage: python scripts/bench_export.py [--size 320x480] [--batch 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unetcli.core.task import Task  # noqa: E402
from unetcli.export.graph import PixelModel, export_onnx  # noqa: E402
from unetcli.models import UNet  # noqa: E402


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def timed(run, batch: int, repeats: int) -> float:
    """Images per second over `repeats` runs after one warm-up run."""
    run()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return batch * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="320x480", help="HEIGHTxWIDTH of the model input")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    torch.manual_seed(0)
    model = UNet(3, 1, widths=[64, 128, 256, 512, 1024], norm="batch").eval()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # conf/dataset/carvana.yaml
    wrapped = PixelModel(model, mean, std, Task("binary", 1)).eval()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.batch, height, width, 3), dtype=np.uint8)
    tensor = torch.from_numpy(pixels)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(wrapped, path, 18, None)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cores
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def onnx_run():
            return session.run(None, {"pixels": pixels})[0]

        def torch_run(bf16: bool = False):
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return wrapped(tensor)

        figures = {
            "onnxruntime CPU fp32": timed(onnx_run, args.batch, args.repeats),
            "torch fp32": timed(torch_run, args.batch, args.repeats),
        }
        difference = float(np.abs(onnx_run() - torch_run().numpy()).max())
        wrapped.to(memory_format=torch.channels_last)
        figures["torch fp32 channels-last"] = timed(torch_run, args.batch, args.repeats)
        figures["torch bf16 channels-last"] = timed(
            lambda: torch_run(True), args.batch, args.repeats
        )
    load = os.getloadavg()
    print(
        f"model: conf/model/unet.yaml (31.04 M parameters, random weights), input "
        f"{height}x{width} uint8, batch {args.batch}, {args.repeats} timed runs after 1 warm-up"
    )
    print(
        f"CPU: {cpu_name()}, {cores} cores; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}; torch {torch.__version__}, onnxruntime {ort.__version__}"
    )
    for name, speed in figures.items():
        print(f"  {name:<26} {speed:8.3f} images/s")
    print(f"largest probability difference onnxruntime vs torch fp32: {difference:.2e}")


if __name__ == "__main__":
    main()
