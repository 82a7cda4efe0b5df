"""One process against a torchrun launch of several, at the same global batch and epochs.

Backs the figures of docs/guides/many-gpus.md and docs/benchmarks.md: the validation Dice
of both runs and their wall times. With optimizer=sgd they agree within about
0.01; with Adam (the default) early in training they lie as far apart as one
process lies from itself in another float order (hardware.channels_last=true).

    python scripts/bench_distributed.py                       # 2 processes, 5 epochs
    python scripts/bench_distributed.py --processes 2 --epochs 20 --batch 8 model.norm=group
    OMP_NUM_THREADS=1 python scripts/bench_distributed.py --epochs 10 \
        dataset.layout.num_objects=40 hardware.tune=false     # the published figures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(command: list[str], cwd: Path) -> tuple[float, dict]:
    """Run one training to the end; (wall seconds, its result.json)."""
    started = time.time()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - started
    result = json.loads(next((cwd / "outputs" / "train").glob("*/result.json")).read_text())
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="global batch of both runs")
    parser.add_argument("overrides", nargs="*", help="more key=value overrides for both runs")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-dist-")) / "data"
    common = [
        f"paths.data_dir={data}",
        "paths.output_root=outputs",
        f"trainer.epochs={args.epochs}",
        "trainer.progress=false",
        *args.overrides,
    ]
    unet = [sys.executable, "-m", "unetcli", "train"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    runs = {
        "1 process": [*unet, *common, f"trainer.batch_size={args.batch}"],
        f"torchrun, {args.processes} processes": [
            *torchrun,
            f"--nproc_per_node={args.processes}",
            "-m",
            "unetcli",
            "train",
            *common,
            f"trainer.batch_size={args.batch // args.processes}",
        ],
    }
    # The synthetic set is generated once, before either run is timed, as the dataset.*
    # overrides say (a set already generated is not generated again by the runs).
    shape = [o for o in args.overrides if o.startswith("dataset.")]
    subprocess.run([*unet[:-1], "download", f"paths.data_dir={data}", *shape], check=True)
    for name, command in runs.items():
        with tempfile.TemporaryDirectory(prefix="bench-dist-run-") as folder:
            seconds, result = train(command, Path(folder))
        final = result["final"]
        print(
            f"{name:>24}: {seconds:6.1f} s wall, val/dice {final['val/dice']:.4f} "
            f"(best {result['best_value']:.4f}), train/loss {final['train/loss']:.4f}"
        )


if __name__ == "__main__":
    main()
