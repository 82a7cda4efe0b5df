"""Does loading keep up with training? Loader vs model throughput for each dataset layout.

For every dataset (carvana, massachusetts_buildings, montgomery, folder) this
generates a few images at the published source size in the dataset's own
layout, then measures, with the dataset's default config (training size, crop,
augmentation):
- samples/s of the training DataLoader with 0, 1 and 2 workers;
- samples/s of training steps of the default model (conf/model/unet.yaml,
  64-wide) at the same input size, on this machine's default hardware setting;
and reports the ratio at the default worker count (hardware=auto), which must
be at least 3. It also reports decode throughput of Carvana-size (1918x1280)
JPEG and GIF files and the pre-training check's speed.

    python scripts/bench_data.py            # a few minutes on 2 CPU cores
    python scripts/bench_data.py --json out.json

Exit status 1 if a loader delivers less than 3x what the model consumes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from unetcli.config.location import config_dir  # noqa: E402
from unetcli.core.hardware import resolve_hardware  # noqa: E402
from unetcli.datasets.file_checks import check_samples  # noqa: E402
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform  # noqa: E402

REQUIRED_RATIO = 3.0
WORKERS = (0, 1, 2)


# --- generated data at the published sizes ------------------------------------------------
def _scene(rng: np.random.Generator, h: int, w: int, channels: int = 3):
    """A smooth photo-like image (gradients, a textured object, mild noise) and its 0/1 mask."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, channels)
    image = base + 40 * np.sin(x / rng.uniform(80, 200))[..., None] * np.cos(y / 150)[..., None]
    mask = np.zeros((h, w), np.uint8)
    centre = (int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3)))
    cv2.ellipse(mask, centre, (w // 4, h // 5), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    image[mask > 0] = rng.uniform(0, 255, channels) + 20 * np.sin(x[mask > 0] / 7)[:, None]
    image += rng.normal(0, 6, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return (image if channels == 3 else image[..., 0]), mask


def make_carvana(root: Path, n: int, rng) -> None:
    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    for i in range(n):
        stem = f"{i // 8:012x}_{i % 8 + 1:02d}"
        image, mask = _scene(rng, 1280, 1918)
        cv2.imwrite(str(root / "train" / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        gif = Image.fromarray(mask, mode="P")
        gif.putpalette([0, 0, 0, 255, 255, 255])
        gif.save(root / "train_masks" / f"{stem}_mask.gif")


def make_buildings(root: Path, n: int, rng) -> None:
    root.mkdir(parents=True, exist_ok=True)
    table = "name,r,g,b\nbackground,0,0,0\nbuilding,255,255,255\n"
    (root / "label_class_dict.csv").write_text(table)
    for split, count in (("train", n), ("val", 1)):
        (root / "png" / split).mkdir(parents=True)
        (root / "png" / f"{split}_labels").mkdir(parents=True)
        for i in range(count):
            image, mask = _scene(rng, 1500, 1500)
            cv2.imwrite(str(root / "png" / split / f"{split}{i}.png"), image)
            label = np.repeat(mask[..., None] * 255, 3, axis=2)
            cv2.imwrite(str(root / "png" / f"{split}_labels" / f"{split}{i}.png"), label)


def make_montgomery(root: Path, n: int, rng) -> None:
    for folder in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask"):
        (root / folder).mkdir(parents=True)
    for i in range(n):
        name = f"MCUCXR_{i:04d}_0.png"
        image, mask = _scene(rng, 4892, 4020, channels=1)
        cv2.imwrite(str(root / "CXR_png" / name), image)
        left, right = mask.copy(), mask.copy()
        left[:, 2010:], right[:, :2010] = 0, 0
        cv2.imwrite(str(root / "ManualMask/leftMask" / name), left * 255)
        cv2.imwrite(str(root / "ManualMask/rightMask" / name), right * 255)


def make_folder(root: Path, n: int, rng) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = _scene(rng, 520, 696)  # a common microscopy frame size
        cv2.imwrite(str(root / "images" / f"cell{i:03d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"cell{i:03d}.png"), mask * 255)


DATASETS = {
    # name: (generator, images generated, source size shown)
    "carvana": (make_carvana, 32, "1918x1280 JPEG + GIF"),
    "massachusetts_buildings": (make_buildings, 12, "1500x1500 PNG + RGB label"),
    "montgomery": (make_montgomery, 12, "4020x4892 PNG + 2 masks"),
    "folder": (make_folder, 32, "696x520 PNG + 0/255 PNG"),
}


# --- measurements ---------------------------------------------------------------------------
def loader_rate(dataset, batch_size: int, workers: int, timed_batches: int) -> float:
    """Steady-state samples/s of a training DataLoader.

    Samples are drawn with replacement, so one iterator runs as long as needed;
    the first batch of each worker and everything prefetched during start-up
    (2 batches per worker) are consumed before the clock starts.
    """
    skip = 1 + 2 * workers
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=(skip + timed_batches) * batch_size
    )
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    start, seen = time.perf_counter(), 0
    for batch in it:
        seen += batch["image"].shape[0]
    return seen / (time.perf_counter() - start)


def model_rate(cfg, channels: int, height: int, width: int, batch: int, steps: int) -> float:
    """Training samples/s of the default model (forward, backward, Adam step)."""
    runtime = resolve_hardware(cfg.hardware)
    model = runtime.prepare_model(instantiate(cfg.model)).train()
    loss_fn = instantiate(cfg.loss)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.randn(batch, channels, height, width)
    masks = (torch.rand(batch, height, width) > 0.5).long()

    def step() -> None:
        with runtime.autocast():
            logits = model(runtime.to_input(images))
        loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (oneDNN kernels, allocations)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def decode_rates(root: Path) -> dict[str, float]:
    jpgs = sorted((root / "train").glob("*.jpg"))
    gifs = sorted((root / "train_masks").glob("*.gif"))
    rates = {}
    for label, files, flag in (
        ("jpeg_1918x1280_per_s", jpgs, cv2.IMREAD_COLOR),
        ("gif_1918x1280_per_s", gifs, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH),
    ):
        start = time.perf_counter()
        for path in files:
            cv2.imread(str(path), flag)
        rates[label] = len(files) / (time.perf_counter() - start)
    start = time.perf_counter()
    for path in gifs:
        np.asarray(Image.open(path))
    rates["gif_1918x1280_pillow_per_s"] = len(gifs) / (time.perf_counter() - start)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--model-batch", type=int, default=2, help="batch of the model timing")
    parser.add_argument("--model-steps", type=int, default=2, help="timed steps per dataset")
    parser.add_argument("--loader-batches", type=int, default=4, help="timed loader batches")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    args = parser.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="unet-bench-"))
    results: dict = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}"}
    failed = []
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            for name in args.datasets:
                make, n, source = DATASETS[name]
                root = tmp / name
                t0 = time.perf_counter()
                make(root, n, rng)
                took = time.perf_counter() - t0
                print(f"{name}: generated {n} images ({source}) in {took:.0f} s")
                cfg = compose("train", overrides=[f"dataset={name}", f"dataset.root={root}"])
                runtime = resolve_hardware(cfg.hardware)
                layout = instantiate(cfg.dataset.layout)
                layout.prepare()
                train, _ = layout.split(float(cfg.dataset.validation_size), 0)
                transform = build_transform(cfg.dataset, cfg.augmentation, "train")
                dataset = SegmentationDataset(layout, train, transform)
                height, width = dataset[0]["image"].shape[1:]
                channels = int(cfg.dataset.in_channels)
                batch = int(cfg.trainer.batch_size)
                row = {
                    "source": source,
                    "train_input": f"{channels}x{height}x{width}",
                    "augmentation": cfg.augmentation.name,
                }
                for workers in WORKERS:
                    rate = loader_rate(dataset, batch, workers, args.loader_batches)
                    row[f"loader_{workers}w_per_s"] = round(rate, 2)
                t0 = time.perf_counter()
                check_samples(layout, train, full=True)
                row["check_per_s"] = round(len(train) / (time.perf_counter() - t0), 1)
                rate = model_rate(cfg, channels, height, width, args.model_batch, args.model_steps)
                row["model_train_per_s"] = round(rate, 3)
                row["model"] = f"unet {list(cfg.model.widths)}, {runtime.precision}"
                default = runtime.num_workers
                ratio = row[f"loader_{min(default, max(WORKERS))}w_per_s"] / rate
                row["ratio_at_default_workers"] = round(ratio, 1)
                row["default_workers"] = default
                if ratio < REQUIRED_RATIO:
                    failed.append(name)
                if name == "carvana":
                    results["decode"] = {k: round(v, 1) for k, v in decode_rates(root).items()}
                results[name] = row
                print(json.dumps({name: row}), flush=True)
                shutil.rmtree(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nloader vs model ({results['machine']}); samples/s")
    header = f"{'dataset':<24}{'train input':<14}{'0 w':>8}{'1 w':>8}{'2 w':>8}"
    print(header + f"{'model':>9}{'ratio':>8}  check/s")
    for name in args.datasets:
        r = results[name]
        print(
            f"{name:<24}{r['train_input']:<14}{r['loader_0w_per_s']:>8}{r['loader_1w_per_s']:>8}"
            f"{r['loader_2w_per_s']:>8}{r['model_train_per_s']:>9}"
            f"{r['ratio_at_default_workers']:>7}x  {r['check_per_s']}"
        )
    if "decode" in results:
        d = results["decode"]
        print(
            f"decode 1918x1280, one thread: JPEG {d['jpeg_1918x1280_per_s']}/s, GIF "
            f"{d['gif_1918x1280_per_s']}/s (OpenCV; Pillow {d['gif_1918x1280_pillow_per_s']}/s)"
        )
    print(
        f"ratio = loader at the default worker count (hardware=auto) / model; "
        f"required >= {REQUIRED_RATIO:.0f}: " + ("FAILED for " + ", ".join(failed) if failed
                                                 else "met for every dataset")
    )  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
