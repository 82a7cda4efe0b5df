"""The pretrained-encoders check on the synthetic set: unet_timm (ResNet-18, from scratch)
against the default run at the same epochs, then its export, verified, and the torch-free
runner's submission against `unet predict`'s.

Runs, in turn, in OUT (each step skipped when its output is already there, so an
interrupted benchmark continues):

  unet train trainer.epochs=E                                          -> OUT/default
  unet train model=unet_timm model.encoder=resnet18 trainer.epochs=E   -> OUT/timm
  unet export checkpoint=OUT/timm/checkpoints/best.pt                  -> OUT/export
  unet predict checkpoint=... hardware=cpu hardware.precision=fp32     -> OUT/predict
  python -m unetcli.runner OUT/export/model.onnx <test images> --order sample_submission.csv

and prints a Markdown table: wall time and best validation Dice of each run, the export's
verification figures, and whether the two submissions hold the same rows.

Usage: python scripts/bench_encoders.py [--epochs 6] [--out bench-encoders]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = {
    "default": [],
    "timm": ["model=unet_timm", "model.encoder=resnet18"],
}


def unet(args: list[str], cwd: Path) -> float:
    """Run `unet ARGS` (this checkout's code) and return its wall time in seconds."""
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    started = time.time()
    subprocess.run([sys.executable, "-m", "unetcli", *args], cwd=cwd, env=env, check=True)
    return time.time() - started


def train(name: str, epochs: int, out: Path) -> dict:
    run = out / name
    if not (run / "result.json").is_file():
        common = [f"paths.data_dir={out / 'data'}", "trainer.progress=false"]
        args = ["train", *RUNS[name], *common, f"trainer.epochs={epochs}", f"hydra.run.dir={run}"]
        seconds = unet(args, out)
        (run / "wall.txt").write_text(f"{seconds:.1f}\n")
    result = json.loads((run / "result.json").read_text())
    return {**result, "wall": float((run / "wall.txt").read_text())}


def rows(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("bench-encoders"))
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = {name: train(name, args.epochs, out) for name in RUNS}
    best = out / "timm" / "checkpoints" / "best.pt"
    if not (out / "export" / "export.json").is_file():
        unet(["export", f"checkpoint={best}", f"hydra.run.dir={out / 'export'}"], out)
    report = json.loads((out / "export" / "export.json").read_text())
    fp32 = ["hardware=cpu", "hardware.precision=fp32", "predict.progress=false"]
    if not (out / "predict" / "submission.csv.gz").is_file():
        unet(["predict", f"checkpoint={best}", *fp32, f"hydra.run.dir={out / 'predict'}"], out)
    test = out / "data" / "synthetic" / "test"
    runner = [sys.executable, "-m", "unetcli.runner", str(out / "export" / "model.onnx"),
              str(test), "--out", str(out / "runner"), "--order",
              str(test.parent / "sample_submission.csv")]  # fmt: skip
    subprocess.run(runner, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    same = rows(out / "runner" / "submission.csv.gz") == rows(out / "predict" / "submission.csv.gz")

    print(f"\n{platform.processor() or platform.machine()}, load {os.getloadavg()}")
    print("| run | epochs | wall | best val Dice (epoch) |\n|---|---|---|---|")
    for name, result in results.items():
        print(
            f"| {name} | {result['epochs']} | {result['wall']:.0f} s | "
            f"{result['best_value']:.4f} ({result['best_epoch']}) |"
        )
    print(
        f"\nexport: {len(report['checks'])} checks, largest probability difference "
        f"{report['max_difference']:.2e}, lowest Dice {report['min_check_dice']:.5f}; "
        f"runner submission == predict submission: {same} "
        f"({len(rows(out / 'predict' / 'submission.csv.gz')) - 1} rows)"
    )


if __name__ == "__main__":
    main()
