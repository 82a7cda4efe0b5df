"""A 2-job sweep one job after the other vs. both at once (hydra/launcher=joblib).

Runs the same `unet train -m optimizer.lr=1e-3,3e-4` sweep on the synthetic set
twice, with Hydra's basic launcher (sequential, each job with every core) and
with the joblib launcher (2 jobs at once, the cores divided between them), and
prints the wall time of each and the jobs' own training time. Needs the cluster
extra. About 2-3 minutes on 2 cores.

    python scripts/bench_sweep.py [--epochs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def unet() -> list[str]:
    script = Path(sys.executable).parent / "unet"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unetcli"]


def sweep(root: Path, name: str, epochs: int, extra: list[str]) -> dict:
    sweep_dir = root / name
    args = [
        "train", "-m", f"paths.data_dir={root / 'data'}", f"hydra.sweep.dir={sweep_dir}",
        "dataset.layout.num_objects=40", "dataset.layout.views=2", "model=unet_small",
        "trainer.progress=false", "trainer.log_images=0", f"trainer.epochs={epochs}",
        "optimizer.lr=1e-3,3e-4", *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    start = time.perf_counter()
    subprocess.run([*unet(), *args], cwd=root, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {"wall_s": round(wall, 1), "job_s": [float(r["seconds"]) for r in rows],
            "best": [float(r["best_value"]) for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([*unet(), "download", f"paths.data_dir={root / 'data'}",
                        "dataset.layout.num_objects=40", "dataset.layout.views=2"],
                       cwd=root, check=True, capture_output=True)
        results = {
            "cores": os.cpu_count(),
            "sequential": sweep(root, "seq", opts.epochs, []),
            "joblib_2": sweep(root, "par", opts.epochs,
                              ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
        }
    seq, par = results["sequential"]["wall_s"], results["joblib_2"]["wall_s"]
    results["speedup"] = round(seq / par, 2)
    print(json.dumps(results, indent=2))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
