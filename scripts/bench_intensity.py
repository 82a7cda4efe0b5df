"""16-bit multichannel TIFFs: `unet doctor`'s printed line against the same set in 8 bits.

Writes a fluorescence-like set (3 channels, a 12-bit camera, exposure varying fourfold
between images, a dark offset; the objects are cells whose marker channel is bright in
absolute terms, so what a value means matters), then trains:
  tiff16   the doctor's `unet train` line on the 16-bit TIFFs, nothing edited
  png8     the same images converted to 8-bit PNGs by hand (each channel's 0.5-99.5
           percentiles over the whole set mapped to 0..255, as a careful person would),
           then that folder's doctor line
  stretch  the 16-bit TIFFs with dataset.intensity.mode=per_image (each image stretched)
Each with the same small model and epochs (EXTRA); prints the best validation Dice.

    python scripts/bench_intensity.py [--out DIR] [--images 160] [--epochs 15]
        [--train-seeds 0,1,2] [--runs tiff16,png8,stretch]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

SIDE = 64


def cells(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) float intensities before the camera, and the mask of marked cells."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    nuclei, membrane, marker = (np.zeros((SIDE, SIDE)) for _ in range(3))
    mask = np.zeros((SIDE, SIDE), np.uint8)
    for _ in range(int(rng.integers(3, 8))):
        cy, cx = rng.uniform(8, SIDE - 8, 2)
        r = rng.uniform(4, 8)
        inside = (y - cy) ** 2 + (x - cx) ** 2 < r**2
        ring = np.abs(np.hypot(y - cy, x - cx) - r) < 1.2
        nuclei += inside * rng.uniform(0.5, 1.0)
        membrane += ring * rng.uniform(0.3, 0.6)
        marked = rng.random() < 0.5
        marker += inside * (rng.uniform(0.6, 0.9) if marked else rng.uniform(0.1, 0.25))
        mask[inside & marked] = 1
    planes = np.stack([nuclei, membrane, marker])
    planes = np.stack([cv2.GaussianBlur(p, (5, 5), 1.0) for p in planes])
    return planes, mask


def write(root: Path, count: int, seed: int) -> None:
    """root/tiff16 (16-bit TIFFs) and root/png8 (the same converted to 8 bits by hand)."""
    rng = np.random.default_rng(seed)
    stacks, masks = [], []
    for _ in range(count):
        planes, mask = cells(rng)
        exposure = rng.uniform(0.5, 2.0) * 1500.0
        counts = 100 + exposure * planes + rng.normal(0, 20, planes.shape)
        stacks.append(counts.clip(0, 4095).astype(np.uint16))
        masks.append(mask)
    low, high = np.percentile(np.stack(stacks), [0.5, 99.5], axis=(0, 2, 3))
    for name in ("tiff16", "png8"):
        (root / name / "images").mkdir(parents=True, exist_ok=True)
        (root / name / "masks").mkdir(parents=True, exist_ok=True)
    for i, (stack, mask) in enumerate(zip(stacks, masks)):
        stem = f"cell{i:04d}"
        tiff = root / "tiff16" / "images" / f"{stem}.tif"
        tifffile.imwrite(tiff, stack, photometric="minisblack")
        scaled = (stack - low[:, None, None]) / (high - low)[:, None, None] * 255
        rgb = scaled.clip(0, 255).astype(np.uint8).transpose(1, 2, 0)
        cv2.imwrite(str(root / "png8" / "images" / f"{stem}.png"), rgb[..., ::-1])
        for name in ("tiff16", "png8"):
            cv2.imwrite(str(root / name / "masks" / f"{stem}.png"), mask * 255)


def doctor_line(folder: Path, out: Path) -> list[str]:
    """The `unet train` arguments the doctor prints for `folder`."""
    proc = subprocess.run(
        [sys.executable, "-m", "unetcli", "doctor", "dataset=folder", f"dataset.root={folder}",
         f"doctor.output_dir={out}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = proc.stdout.split("train with:")[1].strip().splitlines()[0]
    return shlex.split(line)[2:]  # after `unet train`


def train(args: list[str], run_dir: Path) -> tuple[float, float]:
    """(best validation Dice, seconds) of `unet train ARGS`."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "unetcli", "train", *args, f"hydra.run.dir={run_dir}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    return float(result["best_value"]), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_intensity"))
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="the data's seed")
    parser.add_argument("--train-seeds", default="0", help="training seeds, e.g. 0,1,2")
    parser.add_argument("--runs", default="tiff16,png8,stretch", help="which runs")
    opts = parser.parse_args()
    write(opts.out, opts.images, opts.seed)
    extra = [
        "dataset.image_size=[64,64]", "model.widths=[16,32,64]", f"trainer.epochs={opts.epochs}",
        "trainer.batch_size=8", "trainer.log_images=0", "trainer.progress=false",
        f"paths.output_root={opts.out / 'outputs'}",
    ]  # fmt: skip
    line16 = doctor_line(opts.out / "tiff16", opts.out / "doctor16")
    line8 = doctor_line(opts.out / "png8", opts.out / "doctor8")
    runs = {
        "tiff16": line16,
        "png8": line8,
        "stretch": [
            *[a for a in line16 if not a.startswith("dataset.intensity.")],
            "dataset.intensity.mode=per_image",
        ],
    }
    print("doctor, 16-bit:", " ".join(line16))
    print("doctor, 8-bit: ", " ".join(line8))
    for name in opts.runs.split(","):
        found = []
        for seed in opts.train_seeds.split(","):
            run_dir = opts.out / f"run-{name}-{seed}"
            dice, seconds = train([*runs[name], *extra, f"seed={seed}"], run_dir)
            found.append(dice)
            print(f"{name:8s} seed {seed}: best val Dice {dice:.4f}  ({seconds:.0f} s)")
        print(f"{name:8s} median of {len(found)}: {float(np.median(found)):.4f}")


if __name__ == "__main__":
    main()
