"""Kill `unet train` with SIGKILL at random moments, resume each time, and check nothing is lost.

Each attempt starts `unet train` (the first from scratch, later ones with trainer.resume= the
newest last.pt), waits until training has begun, then kills it after a random delay of up to
two epochs, so kills land during steps, validation and checkpoint writes alike. After every
kill every checkpoint written so far is loaded as `unet` would load it. At the end one more
resume runs to completion. Reported: unreadable checkpoints (must be 0), the largest loss of
work (seconds between the newest good checkpoint, or the attempt's start, and the kill), and
the epoch each resume continued from (must never go back).

    python scripts/soak_kill.py                      # 20 kills, tiny synthetic run
    python scripts/soak_kill.py --kills 5 --seed 1 -- model.widths=[8,16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from threading import Event

from unetcli.core.checkpoints import load_checkpoint
from unetcli.errors import UnetError

TINY = [
    "dataset.layout.num_objects=24", "dataset.layout.views=2", "dataset.layout.height=48",
    "dataset.layout.width=64", "dataset.image_size=[48,64]", "model.widths=[8,16,32,64]",
    "trainer.batch_size=4", "trainer.max_steps_per_epoch=6", "trainer.progress=false",
    "hardware.num_workers=0",
]  # fmt: skip


def unet() -> list[str]:
    script = Path(sys.executable).parent / "unet"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unetcli"]


def start(work: Path, attempt: int, overrides: list[str]) -> tuple[subprocess.Popen, Event]:
    """Start one `unet train`; the event is set once its first epoch line or run folder shows."""
    run_dir = work / f"run{attempt:02d}"
    cmd = [*unet(), "train", f"paths.data_dir={work / 'data'}", f"hydra.run.dir={run_dir}",
           *overrides]  # fmt: skip
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip
    training = Event()

    def watch() -> None:
        with open(run_dir.with_suffix(".log"), "w") as log:
            for line in proc.stdout:
                log.write(line)
                if line.startswith("run folder:"):
                    training.set()

    threading.Thread(target=watch, daemon=True).start()
    return proc, training


def checkpoints(work: Path) -> list[Path]:
    return sorted(work.glob("run*/checkpoints/*.pt"))


def unreadable(work: Path) -> list[str]:
    bad = []
    for path in checkpoints(work):
        try:
            load_checkpoint(path)
        except UnetError as err:
            bad.append(f"{path}: {err}")
    return bad


def newest_last(work: Path) -> Path | None:
    found = sorted(work.glob("run*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def epoch_seconds(work: Path, overrides: list[str]) -> float:
    """Time one uninterrupted run of two epochs, to scale the kill delays."""
    proc, training = start(work, 0, [*overrides, "trainer.epochs=2"])
    training.wait(600)
    began = time.time()
    proc.wait()
    return max(0.5, (time.time() - began) / 2)


def soak(args: argparse.Namespace, work: Path) -> dict:
    rng = random.Random(args.seed)
    overrides = [*TINY, f"trainer.epochs={args.epochs}", *args.overrides]
    per_epoch = epoch_seconds(work, overrides)
    lost, resumed_from, bad = [], [], []
    for attempt in range(1, args.kills + 1):
        last = newest_last(work)
        resume = [f"trainer.resume={last}"] if last else []
        resumed_from.append(load_checkpoint(last)["epoch"] if last else 0)
        proc, training = start(work, attempt, [*overrides, *resume])
        attempt_start = time.time()
        training.wait(600)
        time.sleep(rng.uniform(0.0, 2.0 * per_epoch))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.time()
        newest = newest_last(work)
        saved = newest.stat().st_mtime if newest else 0.0
        lost.append(killed - max(saved, attempt_start))
        bad += unreadable(work)
        print(f"kill {attempt}/{args.kills}: resumed from epoch {resumed_from[-1]}, "
              f"lost {lost[-1]:.1f} s, unreadable so far {len(bad)}", flush=True)  # fmt: skip
    last = newest_last(work)
    final_epoch = load_checkpoint(last)["epoch"] + 1
    proc, _ = start(work, args.kills + 1,
                    [*overrides, f"trainer.resume={last}", f"trainer.epochs={final_epoch}"])
    proc.wait()
    result = json.loads((work / f"run{args.kills + 1:02d}" / "result.json").read_text())
    return {
        "kills": args.kills,
        "unreadable_checkpoints": len(bad),
        "checkpoints_checked": len(checkpoints(work)),
        "largest_loss_of_work_s": round(max(lost), 1),
        "median_loss_of_work_s": round(sorted(lost)[len(lost) // 2], 1),
        "seconds_per_epoch": round(per_epoch, 2),
        "resumed_from_epochs": resumed_from,
        "epochs_never_went_back": resumed_from == sorted(resumed_from),
        "final_run_epochs": result["epochs"],
        "final_run_continued": result["epochs"] == final_epoch,
        "final_metrics": result["final"],
        "unreadable": bad,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1000, help="more than the kills reach")
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default a temp folder")
    parser.add_argument("overrides", nargs="*", help="extra `unet train` overrides (after --)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="unet-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    report = soak(args, work)
    print(json.dumps(report, indent=2))
    print(f"work folder: {work}")
    sys.exit(0 if report["unreadable_checkpoints"] == 0 and report["final_run_continued"] else 1)


if __name__ == "__main__":
    main()
