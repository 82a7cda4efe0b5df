"""Training throughput of every precision/layout setting, and `unet train` against its bare step.

1. The table: training steps of any model config at any input size and batch
   in each setting (CPU: fp32 / bf16 x contiguous / channels-last, bf16 even
   where the CPU lacks bf16 units, to show what it costs there; CUDA adds TF32
   and fp16), alternated one step at a time with paired medians, exactly as the
   tuner behind `hardware=auto` measures (unetcli/tuning/paired_timing.py).
2. End to end (unless --no-e2e): `unet train` (hardware=auto: the tuner chooses,
   given --tune-seconds whatever the run's length; its cache is the user's own)
   on a synthetic set of the same size, training steps only (no validation),
   against the bare step of the setting it chose. Runs and blocks of bare steps
   alternate (run, bare, run, bare, ...: --repeats runs, each one's ratio taken
   against the bare blocks beside it), because a shared machine's speed drifts
   by more than the gap being measured; a block is an epoch's number of steps
   timed as a whole, as the run's epochs are. The median ratio must be at least 0.9
   (exit status 1 otherwise).

    python scripts/bench_train.py                                   # unet_small, 96x128, batch 8
    python scripts/bench_train.py --model unet --size 128 128 --no-e2e
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from hydra import compose as hydra_compose  # noqa: E402
from hydra import initialize_config_dir  # noqa: E402

from unetcli.config.instantiate import build  # noqa: E402
from unetcli.config.location import config_dir  # noqa: E402
from unetcli.core.hardware import cpu_has_bf16, resolve_hardware  # noqa: E402
from unetcli.core.task import Task  # noqa: E402
from unetcli.training.step import fresh_step  # noqa: E402
from unetcli.tuning.candidates import Candidate  # noqa: E402
from unetcli.tuning.paired_timing import measure  # noqa: E402

REQUIRED_RATIO = 0.9


def compose(command: str, overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose(config_name=command, overrides=overrides)


def unet_command() -> list[str]:
    script = Path(sys.executable).parent / "unet"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unetcli"]


def overrides(args: argparse.Namespace, data: Path) -> list[str]:
    """The synthetic set at --size, --model, --batch; training only (no validation split)."""
    h, w = args.size
    return [
        f"model={args.model}",
        f"paths.data_dir={data}",
        "dataset.layout.num_objects=" + str(max(8, (args.steps * args.batch) // 4 + 2)),
        f"dataset.layout.height={h}",
        f"dataset.layout.width={w}",
        f"dataset.image_size=[{h},{w}]",
        "dataset.validation_size=0",
        "trainer.monitor=train/loss",
        "trainer.monitor_mode=min",
        f"trainer.batch_size={args.batch}",
    ]


def settings() -> list[Candidate]:
    cuda = torch.cuda.is_available()
    precisions = ["fp32", "tf32", "bf16", "fp16"] if cuda else ["fp32", "bf16"]
    return [Candidate(p, cl) for p in precisions for cl in (False, True)]


def bare_steps(args: argparse.Namespace, data: Path, options: list[Candidate]) -> dict:
    """Each setting's bare training step, bound to one random batch of the run's shape."""
    cfg = compose("train", [*overrides(args, data), "paths.run_dir=unused"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = resolve_hardware(compose("train", [f"hardware.device={device}"]).hardware)
    task = Task.from_config(cfg.dataset)
    loss_fn = build(cfg.loss, "loss", task=task)
    h, w = args.size
    batch = {
        "image": torch.randn(args.batch, int(cfg.dataset.in_channels), h, w),
        "mask": (torch.rand(args.batch, h, w) > 0.5).long(),
    }
    steps = {c.name: fresh_step(cfg, c.runtime(base), loss_fn) for c in options}
    return {name: (lambda s=s: s(batch).loss) for name, s in steps.items()}


def bare_rates(args: argparse.Namespace, data: Path, options: list[Candidate]) -> dict:
    """Images/s of each setting's bare training step (alternated, paired medians)."""
    on_batch = bare_steps(args, data, options)
    result = measure(on_batch, args.batch, lambda _: float("inf"), args.rounds)
    return {"rates": result.rates, "dropped": result.dropped, "rounds": result.rounds}


def bare_block(args: argparse.Namespace, data: Path, chosen: Candidate) -> float:
    """Images/s of `--steps` bare steps in a row, timed as a whole like an epoch of a run.

    A whole block, not a median step: a run's epoch pays for its slow steps too
    (a shared machine's hiccups), and a median would leave them out of one side only.
    """
    step = bare_steps(args, data, [chosen])[chosen.name]
    step()  # the first step pays for allocation
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.batch / (time.perf_counter() - start)


def end_to_end(args: argparse.Namespace, data: Path, out: Path) -> tuple[float, dict]:
    """Images/s of `unet train`'s training epochs after the first, and its hardware.json."""
    run = [
        *unet_command(),
        "train",
        *overrides(args, data),
        f"paths.output_root={out}",
        f"trainer.epochs={args.epochs}",
        f"trainer.max_steps_per_epoch={args.steps}",
        "trainer.progress=false",
        # A short benchmark run: let the tuner measure for up to this long anyway.
        f"hardware.tune_budget.seconds={args.tune_seconds}",
        "hardware.tune_budget.share=null",
    ]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"unet train failed:\n{proc.stdout}\n{proc.stderr}")
    print("  " + proc.stdout.splitlines()[0])
    run_dir = next((out / "train").iterdir())
    with open(run_dir / "metrics.csv") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)][1:]
    hardware = json.loads((run_dir / "hardware.json").read_text())
    return args.steps * args.batch / statistics.median(seconds), hardware


def print_table(args: argparse.Namespace, bare: dict) -> None:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(
        f"model={args.model}, {args.size[0]}x{args.size[1]}, batch {args.batch}, {device}, "
        f"{torch.get_num_threads()} threads, {bare['rounds']} alternated rounds; "
        f"CPU bf16 units: {cpu_has_bf16()}"
    )
    rates = bare["rates"]
    print("| " + " | ".join(rates) + " |")
    print("|" + "---|" * len(rates))
    best = max(rates.values())
    print("| " + " | ".join(f"**{r:.2f}**" if r == best else f"{r:.2f}" for r in rates.values()))
    for name, why in bare["dropped"].items():
        print(f"  {name}: out ({why})")


def alternated(args: argparse.Namespace, data: Path, out: Path) -> tuple[list[float], dict]:
    """Ratios of `unet train` runs to the bare blocks beside them: run, bare, run, bare, ...

    The first run lets the tuner choose (later runs read its cache and start at
    once); each bare block times the chosen setting's step with the run's torch
    threads, as many steps in a row as a run's epoch. A run's reference is the mean of the
    blocks before and after it (the first run has only the one after it).
    """
    rate, hardware = end_to_end(args, data, out / "run0")
    chosen = next(c for c in settings() if c.name == hardware["chosen"])
    if hardware.get("threads"):
        torch.set_num_threads(int(hardware["threads"]))
    runs, blocks = [rate], [bare_block(args, data, chosen)]
    for i in range(1, args.repeats):
        runs.append(end_to_end(args, data, out / f"run{i}")[0])
        blocks.append(bare_block(args, data, chosen))
    for i, (run, block) in enumerate(zip(runs, blocks), 1):
        print(f"  run {i}: unet train {run:.2f} img/s, bare step after it {block:.2f}")
    references = [blocks[0]] + [statistics.mean(pair) for pair in zip(blocks, blocks[1:])]
    return [r / ref for r, ref in zip(runs, references)], hardware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_small", help="a conf/model/ name")
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds of the table")
    parser.add_argument("--steps", type=int, default=20, help="unet train: steps per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="unet train: epochs (first dropped)")
    parser.add_argument("--repeats", type=int, default=3, help="unet train runs, alternated")
    parser.add_argument(
        "--tune-seconds",
        type=float,
        default=120,
        help="unet train: tuning time (enough for the thread/worker trial on 2 cores)",
    )
    parser.add_argument("--no-e2e", action="store_true", help="only the table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        print_table(args, bare_rates(args, data, settings()))
        if args.no_e2e:
            return
        ratios, hardware = alternated(args, data, Path(tmp) / "out")
    ratio = statistics.median(ratios)
    print(
        f"unet train chose {hardware['chosen']} ({hardware['reason']}); "
        f"{hardware['workers']} loader workers, {hardware['threads']} torch threads "
        f"(threads/workers measured: {hardware.get('thread_rates') or hardware.get('note')})\n"
        f"unet train against the bare step, run by run: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}; median ratio {ratio:.3f} "
        f"(must be >= {REQUIRED_RATIO})"
    )
    if ratio < REQUIRED_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
