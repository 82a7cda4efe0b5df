"""Does a plan made for a time budget train in that time? doctor -> plan -> train, timed.

Generates a microscopy-like folder dataset (grey 256x256 tiles, nuclei as
ellipses, 0/255 masks named <stem>_mask.png, so the doctor has to find the
suffix), then runs the real `unet` commands as a user would, nothing edited:

    unet doctor dataset=folder dataset.root=DATA
    unet plan   dataset=folder dataset.root=DATA plan.time_budget=BUDGET
    unet train  --config-dir CONF experiment=NAME

and reports each command's wall time, what the plan chose, the training time
against the budget and the best validation Dice.

    python scripts/bench_plan.py --budget 2m --tiles 65
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def make_tiles(root: Path, tiles: int, size: int = 256, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(tiles):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(5, 15)):
            centre = tuple(int(v) for v in rng.integers(10, size - 10, 2))
            axes = tuple(int(v) for v in rng.integers(4, 18, 2))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        image = rng.normal(60, 20, (size, size)) + (mask > 0) * rng.normal(70, 25)
        image = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (5, 5), 1.5)
        cv2.imwrite(str(root / "images" / f"tile{i:03d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"tile{i:03d}_mask.png"), mask)
    return root


def unet(*args: str, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "unetcli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"unet {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--tiles", type=int, default=65)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    data = make_tiles(work / "cells", args.tiles)
    source = ["dataset=folder", f"dataset.root={data}"]
    doctor_s, doctor_out = unet("doctor", *source, cwd=work)
    print(doctor_out)
    plan_s, plan_out = unet("plan", *source, f"plan.time_budget={args.budget}", cwd=work)
    print(plan_out)
    plan = json.loads((work / "unet-conf" / "cells.plan.json").read_text())
    print((work / "unet-conf" / "experiment" / "cells.yaml").read_text())
    train_s, train_out = unet(
        "train", "--config-dir", "unet-conf", "experiment=cells", "trainer.progress=false", cwd=work
    )
    print(train_out[-1500:])
    results = sorted(work.glob("outputs/train/*/result.json"))
    result = json.loads(results[-1].read_text())
    print(
        json.dumps(
            {
                "doctor_s": round(doctor_s, 1),
                "plan_s": round(plan_s, 1),
                "budget_s": plan["budget_s"],
                "train_wall_s": round(train_s, 1),
                "train_loop_s": round(result["seconds"], 1),
                "model": plan["model"],
                "size": plan["size"],
                "batch": plan["batch"],
                "epochs": plan["epochs"],
                "images_per_s": round(plan["images_per_s"], 2),
                "best_dice": result["best_value"],
                "load": os.getloadavg(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
