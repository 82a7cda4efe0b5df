"""Does loading keep up with training? Loader vs model throughput for each dataset layout.

For every dataset (carvana, massachusetts_buildings, montgomery, folder) this
generates a few images at the published source size in the dataset's own
layout, then measures, with the dataset's default config (training size, crop,
augmentation):
- samples/s of the training DataLoader with 0, 1 and 2 workers, reading the files
  (dataset.cache=off), and with 0 workers (one core) reading the preprocessed
  cache (dataset.cache=memory and disk), with the cache's build time; for Carvana
  also the uncached rate with OpenCV's JPEG decoder (the reader before core/jpeg.py);
- samples/s of training steps of the default model (conf/model/unet.yaml,
  64-wide) at the same input size, on this machine's default hardware setting;
- the GPU's consumption, computed: the training step's FLOPs (3 x the forward
  pass, counted by torch's FlopCounterMode) at --gpu-share of --gpu-peak-tflops
  (an H100 SXM's dense bf16 peak by default); and the loader of a 16-core
  machine (--gpu-cores - 1 workers, at this machine's one-core rate) against it.
The cached loader must deliver at least 1.5x the GPU's rate for carvana,
massachusetts_buildings and montgomery (exit status 1 otherwise). It also
reports decode throughput of Carvana-size (1918x1280) JPEG and GIF files, the
pre-training check's speed, and (--epochs-check) the second epoch of a real
`unet train dataset=carvana` with a tiny model, with and without the cache.

    python scripts/bench_data.py            # about ten minutes on 2 CPU cores
    python scripts/bench_data.py --json out.json --datasets carvana
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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

from unetcli.config.instantiate import build  # noqa: E402
from unetcli.config.location import config_dir  # noqa: E402
from unetcli.core import jpeg  # noqa: E402
from unetcli.core.hardware import resolve_hardware  # noqa: E402
from unetcli.core.task import Task  # noqa: E402
from unetcli.datasets.file_checks import check_samples  # noqa: E402
from unetcli.datasets.preprocessed import open_store  # noqa: E402
from unetcli.datasets.torch_dataset import (  # noqa: E402
    SegmentationDataset,
    build_transform,
    resize_step,
)

#: The cached loader of the GPU machine must deliver this many times what the GPU consumes.
REQUIRED_RATIO = 1.5
WORKERS = (0, 1, 2)
GPU_CHECKED = ("carvana", "massachusetts_buildings", "montgomery")


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
    if workers == 0:  # one core, as a loader worker computes (loaders._seed_worker)
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
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
    rate = seen / (time.perf_counter() - start)
    torch.set_num_threads(os.cpu_count() or 1)
    return rate


def model_rate(cfg, channels: int, height: int, width: int, batch: int, steps: int) -> float:
    """Training samples/s of the default model (forward, backward, Adam step)."""
    runtime = resolve_hardware(cfg.hardware)
    model = runtime.prepare_model(instantiate(cfg.model)).train()
    loss_fn = build(cfg.loss, "loss", task=Task.from_config(cfg.dataset))
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
    for path in jpgs:
        jpeg.read_jpeg(path, 3)
    rates["jpeg_1918x1280_simplejpeg_per_s"] = len(jpgs) / (time.perf_counter() - start)
    start = time.perf_counter()
    for path in gifs:
        np.asarray(Image.open(path))
    rates["gif_1918x1280_pillow_per_s"] = len(gifs) / (time.perf_counter() - start)
    return rates


def train_flops(cfg, channels: int, height: int, width: int) -> float:
    """FLOPs of one sample's training step: 3 x the forward pass (forward, and a backward
    of about twice its work), the forward counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model = instantiate(cfg.model).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, channels, height, width))
    return 3.0 * float(counter.get_total_flops())


def per_core_rates(cfg, layout, train, batch: int, timed: int) -> dict[str, float]:
    """One-core loader rates, side by side: reading the files (and, for JPEG datasets, with
    OpenCV's decoder), and reading the preprocessed cache held in memory and memory-mapped;
    medians of 3 rounds taken in turn. Also the cache's build rate (all threads)."""
    transform = build_transform(cfg.dataset, cfg.augmentation, "train")
    datasets = {"loader_0w": SegmentationDataset(layout, train, transform)}
    took = 0.0
    for mode in ("memory", "disk"):
        dataset_cfg = cfg.dataset.copy()
        dataset_cfg.cache = mode
        t0 = time.perf_counter()
        store, _ = open_store(dataset_cfg, layout, train, resize_step(dataset_cfg), None)
        took = took if mode == "disk" else time.perf_counter() - t0  # the first: a build
        datasets[f"cached_{mode}_0w"] = SegmentationDataset(layout, train, transform, store=store)
    rounds: dict[str, list[float]] = {}
    jpegs = train[0].image.suffix.lower() in jpeg.JPEG_SUFFIXES
    for _ in range(3):
        for key, dataset in datasets.items():
            many = timed if key == "loader_0w" else timed * 4
            rounds.setdefault(key, []).append(loader_rate(dataset, batch, 0, many))
            if key == "loader_0w" and jpegs:
                rate = opencv_jpeg_rate(dataset, batch, timed)
                rounds.setdefault("loader_0w_opencv_jpeg", []).append(rate)
    rates = {f"{k}_per_s": round(statistics.median(v), 1) for k, v in rounds.items()}
    rates["cache_build_per_s"] = round(len(train) / took, 1)
    return rates


def opencv_jpeg_rate(dataset, batch: int, timed: int) -> float:
    """The one-core uncached rate with OpenCV decoding the JPEGs (the reader before jpeg.py)."""
    saved, jpeg.simplejpeg = jpeg.simplejpeg, None
    try:
        return loader_rate(dataset, batch, 0, timed)
    finally:
        jpeg.simplejpeg = saved


def gpu_side(row: dict, flops: float, args) -> None:
    """The GPU's computed consumption and the 16-core machine's loaders against it."""
    gpu_rate = args.gpu_share * args.gpu_peak_tflops * 1e12 / flops
    workers = args.gpu_cores - 1  # one core feeds the GPU
    row["train_gflop_per_sample"] = round(flops / 1e9, 1)
    row["gpu_per_s"] = round(gpu_rate, 1)
    row["gpu_machine_uncached_per_s"] = round(workers * row["loader_0w_per_s"], 1)
    row["gpu_machine_cached_per_s"] = round(workers * row["cached_memory_0w_per_s"], 1)
    row["gpu_ratio_uncached"] = round(row["gpu_machine_uncached_per_s"] / gpu_rate, 2)
    row["gpu_ratio_cached"] = round(row["gpu_machine_cached_per_s"] / gpu_rate, 2)


def measure(name: str, root: Path, args) -> dict:
    """Every figure of one dataset generated at `root`."""
    make, n, source = DATASETS[name]
    cfg = compose("train", overrides=[f"dataset={name}", f"dataset.root={root}"])
    runtime = resolve_hardware(cfg.hardware)
    layout = instantiate(cfg.dataset.layout)
    layout.prepare()
    train, _ = layout.split(float(cfg.dataset.validation_size), 0)
    dataset = SegmentationDataset(layout, train, build_transform(cfg.dataset, cfg.augmentation,
                                                                 "train"))  # fmt: skip
    channels, (height, width) = int(cfg.dataset.in_channels), dataset[0]["image"].shape[1:]
    batch = int(cfg.trainer.batch_size)
    row = {"source": source, "train_input": f"{channels}x{height}x{width}",
           "augmentation": cfg.augmentation.name}  # fmt: skip
    for workers in WORKERS[1:]:
        row[f"loader_{workers}w_per_s"] = round(
            loader_rate(dataset, batch, workers, args.loader_batches), 2
        )
    row.update(per_core_rates(cfg, layout, train, batch, args.loader_batches))
    t0 = time.perf_counter()
    check_samples(layout, train, full=True)
    row["check_per_s"] = round(len(train) / (time.perf_counter() - t0), 1)
    rate = model_rate(cfg, channels, height, width, args.model_batch, args.model_steps)
    row["model_train_per_s"] = round(rate, 3)
    row["model"] = f"unet {list(cfg.model.widths)}, {runtime.precision}"
    row["default_workers"] = runtime.num_workers
    gpu_side(row, train_flops(cfg, channels, height, width), args)
    return row


def print_tables(results: dict, names: list[str], args) -> None:
    print(f"\nloader vs model ({results['machine']}); samples/s")
    print(f"{'dataset':<24}{'train input':<14}{'0 w':>8}{'1 w':>8}{'2 w':>8}"
          f"{'cached 0 w mem':>16}{'disk':>8}{'model':>9}  check/s")  # fmt: skip
    for name in names:
        r = results[name]
        print(f"{name:<24}{r['train_input']:<14}{r['loader_0w_per_s']:>8}{r['loader_1w_per_s']:>8}"
              f"{r['loader_2w_per_s']:>8}{r['cached_memory_0w_per_s']:>16}"
              f"{r['cached_disk_0w_per_s']:>8}{r['model_train_per_s']:>9}  {r['check_per_s']}")
    workers = args.gpu_cores - 1
    print(f"\nGPU machine: {args.gpu_cores} cores ({workers} loader workers at this machine's "
          f"one-core rate), GPU at {args.gpu_share:.0%} of {args.gpu_peak_tflops:g} TFLOP/s; "
          "GPU rate = share x peak / (3 x forward FLOPs per sample)")
    for name in names:
        r = results[name]
        print(f"{name:<24}{r['train_gflop_per_sample']:>8} GFLOP/sample -> GPU "
              f"{r['gpu_per_s']:>7}/s; loaders uncached {r['gpu_machine_uncached_per_s']:>7}/s "
              f"({r['gpu_ratio_uncached']}x), cached {r['gpu_machine_cached_per_s']:>8}/s "
              f"({r['gpu_ratio_cached']}x)")
    if "decode" in results:
        d = results["decode"]
        print(f"decode 1918x1280, one thread: JPEG {d['jpeg_1918x1280_per_s']}/s (OpenCV), "
              f"{d['jpeg_1918x1280_simplejpeg_per_s']}/s (simplejpeg), GIF "
              f"{d['gif_1918x1280_per_s']}/s (OpenCV; Pillow {d['gif_1918x1280_pillow_per_s']}/s)")


def epochs_check(tmp: Path, images: int, rng, widths: str = "[4,8]") -> dict:
    """Second-epoch seconds of `unet train dataset=carvana` (generated 1918x1280 files, the
    default 320x480, a tiny U-Net of `widths`) without and with the cache, run in turn."""
    import subprocess

    root = tmp / "epochs"
    make_carvana(root, images, rng)
    seconds = {}
    for mode in ("off", "memory", "off", "memory"):
        out = tmp / f"runs-{mode}"
        cmd = [sys.executable, "-m", "unetcli", "train", "dataset=carvana",
               f"dataset.root={root}", f"dataset.cache={mode}", f"model.widths={widths}",
               "trainer.epochs=2", "trainer.log_images=0", "hardware.tune=false",
               "logger=[csv]", f"paths.output_root={out}", "trainer.progress=false"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        metrics = next(out.rglob("metrics.csv")).read_text().splitlines()
        second = float(metrics[2].split(",")[-1])
        seconds.setdefault(mode, []).append(second)
        shutil.rmtree(out)
    off, cached = min(seconds["off"]), min(seconds["memory"])
    print(f"\nunet train dataset=carvana, {images} generated images, model.widths={widths}: second "
          f"epoch {off:.1f} s without the cache, {cached:.1f} s with it ({off / cached:.1f}x); "
          f"runs: {seconds}")
    return {"second_epoch_off_s": seconds["off"], "second_epoch_cached_s": seconds["memory"],
            "speed_up": round(off / cached, 2)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--model-batch", type=int, default=2, help="batch of the model timing")
    parser.add_argument("--model-steps", type=int, default=2, help="timed steps per dataset")
    parser.add_argument("--loader-batches", type=int, default=4, help="timed loader batches")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--gpu-peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak (H100 SXM: 989)")  # fmt: skip
    parser.add_argument("--gpu-share", type=float, default=0.4,
                        help="share of the peak a U-Net training step sustains")  # fmt: skip
    parser.add_argument("--gpu-cores", type=int, default=16, help="CPU cores of the GPU machine")
    parser.add_argument("--epochs-check", type=int, default=48,
                        help="images of the unet train epoch check (0: skip it)")  # fmt: skip
    parser.add_argument("--epochs-widths", default="[4,8]",
                        help="model.widths of the epoch check's tiny U-Net")  # fmt: skip
    args = parser.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="unet-bench-"))
    results: dict = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}"}
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            for name in args.datasets:
                make, n, source = DATASETS[name]
                root = tmp / name
                t0 = time.perf_counter()
                make(root, n, rng)
                print(f"{name}: generated {n} images ({source}) in "
                      f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
                results[name] = measure(name, root, args)
                if name == "carvana":
                    results["decode"] = {k: round(v, 1) for k, v in decode_rates(root).items()}
                print(json.dumps({name: results[name]}), flush=True)
                shutil.rmtree(root)
        if args.epochs_check:
            results["epochs_check"] = epochs_check(tmp, args.epochs_check, rng, args.epochs_widths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = [n for n in args.datasets if n in GPU_CHECKED
              and results[n]["gpu_ratio_cached"] < REQUIRED_RATIO]  # fmt: skip
    checked = [n for n in GPU_CHECKED if n in args.datasets]
    if args.datasets:  # --datasets with no names runs the epoch check alone
        print_tables(results, args.datasets, args)
    if checked:
        verdict = "FAILED for " + ", ".join(failed) if failed else "met"
        print(f"required: cached loaders of the GPU machine >= {REQUIRED_RATIO}x the GPU's rate "
              f"for {', '.join(checked)}: {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
