"""The ResNet-18 U-Net from random weights against the default run, over seeds, scored on
the validation split, the synthetic set's test images and freshly generated objects.

Why: the synthetic set validates on 20 objects (four views each), chosen by the run's seed.
One object a model confuses moves validation Dice by several hundredths, so one validation
figure against another says little about which model does better on objects it has not
seen. The 48 test images are 48 further objects, the same at every seed; the fresh sets
are the synthetic generator's objects at other generator seeds (`dataset.layout.seed`),
--fresh-objects of them each, that no run trains or chooses its checkpoint on.

For each seed S, in OUT (a step is skipped when its output is there, so an interrupted
benchmark continues):

  unet train seed=S trainer.epochs=E                                         -> OUT/default-S
  unet train seed=S model=unet_timm model.encoder=resnet18 trainer.epochs=E  -> OUT/timm-S
  unet evaluate checkpoint=<run>/checkpoints/best.pt evaluate.split=val|test -> OUT/<run>-val|test
  unet evaluate checkpoint=... evaluate.split=test dataset.root=OUT/fresh-G \
      +dataset.layout.seed=G +dataset.layout.num_test=N                     -> OUT/<run>-fresh-G

and prints a Markdown table: each model's mean Dice per set and seed, the gap (timm minus
default), and its standard error over the objects (paired: both models at one seed are
scored on the same objects).

Usage: python scripts/bench_encoder_seeds.py [--seeds 42 1 2] [--epochs 20]
       [--fresh-seeds 7 8] [--fresh-objects 500] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = {"default": [], "timm": ["model=unet_timm", "model.encoder=resnet18"]}


def unet(args: list[str], cwd: Path) -> None:
    """Run `unet ARGS` with this checkout's code."""
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "unetcli", *args], cwd=cwd, env=env, check=True)


def train(name: str, seed: int, epochs: int, out: Path) -> Path:
    run = out / f"{name}-{seed}"
    if not (run / "result.json").is_file():
        common = [f"paths.data_dir={out / 'data'}", "trainer.progress=false"]
        unet(["train", *RUNS[name], *common, f"seed={seed}", f"trainer.epochs={epochs}",
              f"hydra.run.dir={run}"], out)  # fmt: skip
    return run


def targets(fresh_seeds: list[int], objects: int, out: Path) -> dict[str, list[str]]:
    """The sets to score on, by name, with the `unet evaluate` arguments that select them."""
    sets = {"val": ["evaluate.split=val"], "test": ["evaluate.split=test"]}
    for g in fresh_seeds:
        sets[f"fresh-{g}"] = [
            "evaluate.split=test",
            f"dataset.root={out / f'fresh-{g}'}",
            f"+dataset.layout.seed={g}",
            f"+dataset.layout.num_test={objects}",
        ]
    return sets


def per_object(run: Path, name: str, args: list[str], out: Path) -> dict[str, list[float]]:
    """The Dice of each image of set `name`, grouped by object (`<object>_<view>.jpg`)."""
    folder = out / f"{run.name}-{name}"
    if not (folder / "per_image.csv").is_file():
        best = run / "checkpoints" / "best.pt"
        unet(["evaluate", f"checkpoint={best}", *args, "evaluate.sweep=false",
              f"hydra.run.dir={folder}"], out)  # fmt: skip
    objects: dict[str, list[float]] = {}
    with open(folder / "per_image.csv", newline="") as f:
        for row in csv.DictReader(f):
            objects.setdefault(row["image"].split("_")[0], []).append(float(row["dice"]))
    return objects


def compare(seed: int, name: str, args: list[str], epochs: int, out: Path) -> str:
    """One table row: both models' mean Dice (per image, then averaged, as evaluate
    reports it) and the gap's standard error over the objects."""
    scores = {model: per_object(train(model, seed, epochs, out), name, args, out) for model in RUNS}
    default, timm = scores["default"], scores["timm"]
    diffs = [statistics.fmean(timm[key]) - statistics.fmean(default[key]) for key in default]
    error = statistics.stdev(diffs) / len(diffs) ** 0.5
    a, b = (statistics.fmean(v for vs in s.values() for v in vs) for s in (default, timm))
    return (
        f"| {name} | {seed} | {len(diffs)} | {a:.4f} | {b:.4f} | {b - a:+.4f} | "
        f"{error:.4f} | {min(diffs):+.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fresh-seeds", type=int, nargs="*", default=[7, 8])
    parser.add_argument("--fresh-objects", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench-encoder-seeds"))
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sets = targets(args.fresh_seeds, args.fresh_objects, out)
    lines = [
        compare(seed, name, evaluate, args.epochs, out)
        for name, evaluate in sets.items()
        for seed in args.seeds
    ]
    print(f"\n{platform.processor() or platform.machine()}, {args.epochs} epochs")
    print("| set | seed | objects | default | resnet18 | gap | standard error | "
          "worst object |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
