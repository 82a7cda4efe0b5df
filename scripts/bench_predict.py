"""Benchmark `unet predict` on generated Carvana-size (1918x1280) images.

Reports:
  1. RLE encoding of one 1918x1280 car-shaped mask: the vectorised encoder
     (target: under 5 ms) beside a naive per-pixel loop, and decoding.
  2. Images per second of the real `unet predict` for predict.mode=resize
     (320x480, one of the Carvana write-ups' sizes) and predict.mode=full
     (1918x1280 whole) with the default model (conf/model/unet.yaml, the
     64-wide U-Net, 31 M parameters).
  3. Peak memory of `unet predict` on 200 and 2,000 images, measured from
     outside: the process's own peak RSS (VmHWM in /proc) and the polled
     peak of its whole process tree (loader workers included) from /proc. To
     keep 2,000 images feasible on 2 CPU cores this uses a TINY U-Net
     (widths 8-16-32-64-128) at resize 160x240.
Both models have random weights except the last 1x1 convolution, fitted here in
seconds so that their masks look like the generated cars and submission rows
have realistic run counts.
     The images are 1918x1280 JPEGs decoded in full for every row.

Usage: python scripts/bench_predict.py [--quick] [--workdir DIR]
Everything is written under a fresh temporary folder (or --workdir, which must
be empty or absent) and that folder is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unetcli.submission.rle import rle_decode, rle_encode  # noqa: E402

HEIGHT, WIDTH = 1280, 1918
DISTINCT = 16  # distinct generated images; the rest are hard links to them


def car_mask(rng: np.random.Generator) -> np.ndarray:
    """A car-like silhouette: a body, a cabin and two wheels."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cx, cy = int(rng.integers(850, 1070)), int(rng.integers(600, 720))
    cv2.ellipse(mask, (cx, cy), (int(rng.integers(700, 800)), 230), 0, 0, 360, 1, -1)
    cv2.ellipse(mask, (cx - 60, cy - 210), (380, 170), 0, 180, 360, 1, -1)
    for dx in (-450, 450):
        cv2.circle(mask, (cx + dx, cy + 200), 120, 1, -1)
    return mask


def car_image(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A studio-like photo: graded light background, textured car body, noise (BGR)."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    background = 230 - 40 * y + np.zeros((HEIGHT, WIDTH, 3), np.float32)
    colour = rng.uniform(20, 200, 3).astype(np.float32)
    stripes = 20 * np.sin(np.arange(WIDTH, dtype=np.float32) / 9)[None, :, None]
    image = np.where(mask[..., None] > 0, colour + stripes, background)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_dataset(root: Path, count: int, name: str) -> Path:
    """root/<name>/test/*.jpg (hard links to DISTINCT images) and a sample_submission.csv."""
    folder = root / name
    (folder / "test").mkdir(parents=True)
    sources = sorted((root / "distinct").glob("*.jpg"))
    names = []
    for i in range(count):
        target = folder / "test" / f"{i:08x}cafe_{i % 16 + 1:02d}.jpg"
        os.link(sources[i % len(sources)], target)
        names.append(target.name)
    with (folder / "sample_submission.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img", "rle_mask"])
        for n in reversed(names):  # an order other than the file names'
            writer.writerow([n, "1 1"])
    return folder


def make_checkpoint(
    path: Path, root: Path, widths: list[int] | None, examples: Path, size: tuple[int, int]
) -> None:
    """A checkpoint with a full training config, as `unet train` writes them."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from unetcli.config.location import config_dir
    from unetcli.core.checkpoints import save_checkpoint
    from unetcli.models.contract import build_model

    overrides = ["model=unet", f"dataset.image_size=[{size[0]},{size[1]}]", "augmentation=none"]
    if widths:
        overrides.append(f"model.widths=[{','.join(map(str, widths))}]")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    cfg.paths.run_dir = str(path.parent)
    cfg.dataset.layout = {"_target_": "unetcli.datasets.carvana.CarvanaLayout", "root": str(root)}
    torch.manual_seed(0)
    model = build_model(cfg.model)
    fit_readout(model, examples, list(cfg.dataset.mean), list(cfg.dataset.std), size)
    state = {
        "model": model.state_dict(),
        "epoch": 1,
        "metrics": {},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    save_checkpoint(state, path)


@torch.no_grad()
def fit_readout(
    model: torch.nn.Module,
    folder: Path,
    mean: list[float],
    std: list[float],
    size: tuple[int, int],
    count: int = 8,
) -> None:
    """Fit only the last 1x1 convolution (logistic regression on the network's own features).

    Training the whole network takes minutes on 2 CPU cores; a fitted readout
    of its (random) features already gives car-shaped masks, so submission rows
    have realistic run counts.
    """
    images, masks = [], []
    for jpg in sorted(folder.glob("*.jpg"))[:count]:
        image = cv2.cvtColor(cv2.imread(str(jpg)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(jpg.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
        images.append(cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR))
        masks.append(cv2.resize(mask, size[::-1], interpolation=cv2.INTER_NEAREST))
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    x = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255 - m) / s
    y = torch.from_numpy(np.stack(masks)).float().reshape(-1)
    model.eval()
    captured = {}
    hook = model.outc.register_forward_hook(lambda _m, inp, _o: captured.update(f=inp[0]))
    for i in range(len(x)):
        model(x[i : i + 1])
        captured.setdefault("all", []).append(captured["f"])
    hook.remove()
    features = torch.cat(captured["all"]).permute(0, 2, 3, 1).reshape(len(y), -1)
    pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:200_000]
    f, t = features[pick], y[pick]
    mu, sd = f.mean(0), f.std(0) + 1e-6
    readout = torch.nn.Linear(f.shape[1], 1)
    optimizer = torch.optim.Adam(readout.parameters(), lr=0.05)
    with torch.enable_grad():
        for _ in range(300):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                readout((f - mu) / sd)[:, 0], t
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    weight = readout.weight[0] / sd
    conv = model.outc.conv
    conv.weight.copy_(weight.view(1, -1, 1, 1))
    conv.bias.copy_(readout.bias - (weight * mu).sum())
    print(f"  readout fitted on {len(x)} images: BCE {loss.item():.3f}")


def process_tree_rss_kb(pid: int) -> int:
    """Summed VmRSS of `pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass  # the process has ended
    return 0


def run_predict(args: list[str], cwd: Path) -> dict:
    """Run `unet predict ARGS`, watching memory from outside; returns figures and output.

    The main process's peak is its VmHWM (the kernel's high-water mark of its
    resident memory since exec), read from /proc until it exits; the tree's
    peak is the largest polled sum of VmRSS over it and its loader workers.
    (wait4's ru_maxrss is not used: it also counts the parent's memory that the
    child shared between fork and exec.)
    """
    command = [str(Path(sys.executable).parent / "unet"), "predict", *args]
    if not Path(command[0]).is_file():
        command = [sys.executable, "-m", "unetcli", "predict", *args]
    started = time.time()
    out_path = cwd / f"predict-{started:.0f}.log"
    with out_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        peak_tree = peak_main = 0
        while proc.poll() is None:
            peak_tree = max(peak_tree, process_tree_rss_kb(proc.pid))
            peak_main = max(peak_main, status_kb(proc.pid, "VmHWM"))
            time.sleep(0.1)
    output = out_path.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"unet predict failed ({proc.returncode}):\n{output[-3000:]}")
    speed = re.search(r"speed\s+([\d.]+) images/s \((\d+) images in ([\d.]+) s", output)
    return {
        "wall_s": time.time() - started,
        "images_per_s": float(speed.group(1)) if speed else float("nan"),
        "loop_s": float(speed.group(3)) if speed else float("nan"),
        "peak_main_mb": peak_main / 1024,
        "peak_tree_mb": peak_tree / 1024,
        "output": output,
    }


def bench_rle(rng: np.random.Generator) -> None:
    mask = car_mask(rng)
    code = rle_encode(mask)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        rle_encode(mask)
        times.append(time.perf_counter() - t)
    decode = []
    for _ in range(10):
        t = time.perf_counter()
        rle_decode(code, mask.shape)
        decode.append(time.perf_counter() - t)
    t = time.perf_counter()
    naive = naive_encode(mask)
    naive_s = time.perf_counter() - t
    assert naive == code, "the naive and vectorised encoders disagree"
    print(f"  mask 1918x1280, {len(code.split()) // 2} runs")
    print(
        f"  vectorised encode: median {1000 * np.median(times):.2f} ms, "
        f"min {1000 * min(times):.2f} ms (target < 5 ms)"
    )
    print(f"  naive per-pixel loop: {1000 * naive_s:.0f} ms (reference)")
    print(f"  decode: median {1000 * np.median(decode):.2f} ms")
    data = ("img,rle_mask\n" + f"x.jpg,{code}\n" * 50).encode()
    t = time.perf_counter()
    gzip.compress(data, compresslevel=6)
    print(f"  gzip of one row (level 6): {1000 * (time.perf_counter() - t) / 50:.2f} ms")


def naive_encode(mask: np.ndarray) -> str:
    runs: list[int] = []
    start = -1
    flat = mask.reshape(-1).tolist()
    for i, v in enumerate(flat):
        if v and start < 0:
            start = i
        elif not v and start >= 0:
            runs += [start + 1, i - start]
            start = -1
    if start >= 0:
        runs += [start + 1, len(flat) - start]
    return " ".join(map(str, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (a smoke run)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.workdir is not None:
        if args.workdir.exists() and any(args.workdir.iterdir()):
            raise SystemExit(f"--workdir {args.workdir} is not empty; give an empty folder")
        args.workdir.mkdir(parents=True, exist_ok=True)
        work = args.workdir
    else:
        work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    counts = (20, 200) if args.quick else (200, 2000)
    resize_images, full_images = (4, 1) if args.quick else (12, 2)
    started = time.time()
    print(f"bench_predict: {os.cpu_count()} CPU cores, torch {torch.__version__}, work in {work}")
    print("(timings vary while other work shares the cores: compare ratios, not times)")
    try:
        rng = np.random.default_rng(0)
        print("\n1. RLE")
        bench_rle(rng)

        distinct = work / "distinct"
        distinct.mkdir()
        for i in range(DISTINCT):
            mask = car_mask(rng)
            cv2.imwrite(
                str(distinct / f"car{i:02d}.jpg"),
                car_image(rng, mask),
                [cv2.IMWRITE_JPEG_QUALITY, 92],
            )
            cv2.imwrite(str(distinct / f"car{i:02d}.png"), mask)

        common = [
            "predict.progress=false",
            "hardware.num_workers=1",
            f"paths.output_root={work}/out",
        ]
        print("\n2. predict speed, default model (64-wide U-Net, 31.0 M parameters)")
        default_ckpt = work / "default.pt"
        speed_set = make_dataset(work, max(resize_images, full_images), "speed")
        make_checkpoint(default_ckpt, speed_set, None, distinct, (320, 480))
        for mode, n, batch in (("resize", resize_images, 4), ("full", full_images, 1)):
            sub = make_dataset(work, n, f"speed_{mode}")
            r = run_predict(
                [
                    f"checkpoint={default_ckpt}",
                    f"dataset.root={sub}",
                    f"predict.mode={mode}",
                    f"predict.batch_size={batch}",
                    *common,
                ],
                work,
            )
            size = "320x480, resized back" if mode == "resize" else "1918x1280 whole"
            print(
                f"  mode={mode:<6} ({size}): {r['images_per_s']:.3f} images/s over {n} images "
                f"(batch {batch}; {r['loop_s']:.1f} s predicting, {r['wall_s']:.1f} s with "
                f"start-up); peak RSS {r['peak_main_mb']:.0f} MB"
            )

        print("\n3. peak memory, TINY U-Net (widths 8-16-32-64-128), mode=resize at 160x240")
        tiny_ckpt = work / "tiny.pt"
        make_checkpoint(tiny_ckpt, speed_set, [8, 16, 32, 64, 128], distinct, (160, 240))
        peaks = {}
        for n in counts:
            sub = make_dataset(work, n, f"memory_{n}")
            out = work / "out" / f"memory_{n}"
            r = run_predict(
                [
                    f"checkpoint={tiny_ckpt}",
                    f"dataset.root={sub}",
                    "predict.batch_size=8",
                    f"predict.output_dir={out}",
                    *common,
                ],
                work,
            )
            peaks[n] = r
            submission = out / "submission.csv.gz"
            print(
                f"  {n:>5} images: peak RSS main process {r['peak_main_mb']:.1f} MB, process "
                f"tree {r['peak_tree_mb']:.1f} MB; {r['images_per_s']:.1f} images/s "
                f"({r['wall_s']:.0f} s)"
            )
            check_submission(submission, sub, n)
            shutil.rmtree(out)
        small, large = peaks[counts[0]], peaks[counts[1]]
        print(
            f"  growth {counts[0]} -> {counts[1]} images: main "
            f"{large['peak_main_mb'] - small['peak_main_mb']:+.1f} MB, tree "
            f"{large['peak_tree_mb'] - small['peak_tree_mb']:+.1f} MB"
        )
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.time() - started:.0f} s")


def check_submission(path: Path, folder: Path, n: int) -> None:
    """Every image exactly once, in sample_submission order, each decoding to 1918x1280."""
    csv.field_size_limit(1 << 30)  # a speckled 1918x1280 mask's row can pass the 128 kB default
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    with (folder / "sample_submission.csv").open(newline="") as f:
        order = [r["img"] for r in csv.DictReader(f)]
    assert [r["img"] for r in rows] == order and len(rows) == n
    foreground = np.mean(
        [
            rle_decode(rows[i]["rle_mask"], (HEIGHT, WIDTH)).mean()
            for i in range(0, n, max(1, n // 10))
        ]
    )
    print(
        f"         submission: {n} rows in sample_submission order, {path.stat().st_size / 1e6:.1f}"
        f" MB gzip, mean foreground {foreground:.2f}"
    )


if __name__ == "__main__":
    main()
