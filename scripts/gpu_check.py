"""GPU acceptance check: the CUDA path end to end, one table, exit status 1 on a failure.

Every check runs the real `unet` (`python -m unetcli`, a subprocess) on small synthetic
data, except the tuner's ground truth (20 synchronised steps per setting, in this process).
It is sized to finish within 8 minutes on one H100; the table goes to stdout and to
OUT/gpu_check.md (--out, default outputs/gpu_check).

On a GPU machine without network whose Python has torch (2.4 or newer, a CUDA build) but
not Hydra, OmegaConf, antlr4 or albumentations: make their wheels beforehand where there
is network, for the target's Python version (`bash scripts/gpu_wheels.sh 3.12`, into
.whl/), copy the repository with .whl/ over, and from the repository root run

    pip install --no-index --no-deps --target .whl/site .whl/*.whl
    PYTHONPATH=$PWD:$PWD/.whl/site NO_ALBUMENTATIONS_UPDATE=1 python scripts/gpu_check.py

`--cpu` runs every check that does not need CUDA at tiny sizes (a minute or so), the others
reported as "skipped: no CUDA"; its timing comparisons are reported, not judged, since a
shared CPU drifts by more than the differences between settings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402

#: Ground truth: synchronised steps timed per setting, after warm-up steps.
TRUTH_STEPS, TRUTH_WARMUP = 20, 3
#: Settings whose true rates differ by more than this must be ranked alike by the tuner.
RANK_MARGIN = 0.10
#: Evaluate on the GPU and on the CPU agree within this much Dice.
DICE_TOLERANCE = 1e-3
#: Seconds a compiled tuning may run past its budget: one warm-up call started in time.
COMPILE_SLACK = 60.0
#: `unet train` against its bare step (scripts/bench_train.py asks the same).
TRAIN_RATIO = 0.9


@dataclass(frozen=True)
class Sizes:
    """The data and model of one kind of run: a synthetic set and model overrides."""

    height: int
    width: int
    batch: int
    objects: int
    model: tuple[str, ...]


@dataclass
class Check:
    """What the checks share: where they write, CUDA or not, what earlier checks left."""

    out: Path
    cuda: bool
    small: Sizes  # most runs
    tune: Sizes  # the tuner's run: the 64-wide U-Net at 256x256, batch 16
    tune_seconds: int
    cpu_mode: bool = False
    checkpoint: Path | None = None
    tuned: dict = field(default_factory=dict)  # the tuner's hardware.json

    def env(self) -> dict[str, str]:
        """The subprocesses' environment: this repository importable, a fresh tuning cache."""
        path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path),
            "NO_ALBUMENTATIONS_UPDATE": "1",
            "XDG_CACHE_HOME": str(self.out / "cache"),
        }


@dataclass(frozen=True)
class Row:
    check: str
    status: str  # pass, FAIL or "skipped: ..."
    detail: str
    seconds: float = 0.0


class Failed(Exception):
    """A check's condition does not hold; its message is the table's detail."""


def data_overrides(check: Check, sizes: Sizes) -> list[str]:
    """The synthetic set of `sizes` (its own folder per size) and its model and batch."""
    h, w = sizes.height, sizes.width
    return [
        f"paths.data_dir={check.out / 'data' / f'{h}x{w}'}",
        f"dataset.layout.num_objects={sizes.objects}",
        "dataset.layout.views=2",
        "dataset.layout.num_test=4",
        f"dataset.layout.height={h}",
        f"dataset.layout.width={w}",
        f"dataset.image_size=[{h},{w}]",
        *sizes.model,
        f"trainer.batch_size={sizes.batch}",
    ]


def unet(check: Check, name: str, args: list[str], timeout: float = 300) -> str:
    """`unet ARGS` in a subprocess, run folder OUT/NAME; its output (also in OUT/NAME.log)."""
    run_dir = check.out / name
    command = [sys.executable, "-m", "unetcli", *args, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(
        command, env=check.env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    (check.out / f"{name}.log").write_text(" ".join(command) + "\n\n" + output)
    if proc.returncode != 0:
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise Failed(f"exit {proc.returncode}: {last[0][:160]} (see {name}.log)")
    return output


def train(check: Check, name: str, sizes: Sizes, extra: list[str]) -> tuple[str, dict]:
    """`unet train` of `sizes` for a few steps; (its output, its result.json)."""
    args = ["trainer.progress=false", "trainer.epochs=1", "trainer.max_steps_per_epoch=8"]
    output = unet(check, name, ["train", *data_overrides(check, sizes), *args, *extra])
    return output, json.loads((check.out / name / "result.json").read_text())


def hardware_json(check: Check, name: str) -> dict:
    return json.loads((check.out / name / "hardware.json").read_text())


# --- the checks, in order; each returns its detail or raises Failed ----------------------


def environment(check: Check) -> str:
    """torch, CUDA, the device and whether it computes bf16 natively (not emulated)."""
    from unetcli.core.hardware import bf16_supported

    if not check.cuda:
        if check.cpu_mode:
            return f"torch {torch.__version__}, no CUDA: CPU mode"
        raise Failed(f"torch {torch.__version__} sees no CUDA device (--cpu for a CPU run)")
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    bf16 = bf16_supported(device)
    detail = f"torch {torch.__version__}, CUDA {torch.version.cuda}, {name}, bf16 native {bf16}"
    if not bf16:
        raise Failed(detail + " (this GPU emulates bf16: the bf16 checks do not apply)")
    return detail


def rule_run(check: Check) -> str:
    """`hardware.tune=false`: the start line names the rule, the loss is finite, last.pt."""
    extra = ["hardware.tune=false", "trainer.epochs=3", "trainer.max_steps_per_epoch=12"]
    output, result = train(check, "rule", check.small, extra)
    start = next((line for line in output.splitlines() if line.startswith("train:")), "")
    loss = float(result["final"].get("train/loss", math.nan))
    checkpoint = check.out / "rule" / "checkpoints" / "last.pt"
    if "hardware.tune=false: rule" not in start:
        raise Failed(f"start line without the rule: {start[:160]}")
    if not math.isfinite(loss) or not checkpoint.is_file():
        raise Failed(
            f"train/loss {loss}, last.pt {'written' if checkpoint.is_file() else 'absent'}"
        )
    check.checkpoint = checkpoint
    device = start.split("; ")[-1].split(" (")[0]
    return f"{device}; train/loss {loss:.4f}; last.pt written"


def tuner(check: Check) -> str:
    """`hardware=auto` with an empty cache: what it chose and the rates it measured."""
    shutil.rmtree(check.out / "cache", ignore_errors=True)
    train(check, "tune", check.tune, tuning_overrides(check))
    report = hardware_json(check, "tune")
    if report["source"] != "measured" or not report["rates"]:
        raise Failed(f"source {report['source']}: {report.get('note') or report['reason']}")
    check.tuned = report
    rates = ", ".join(f"{k} {v:.1f}" for k, v in sorted(report["rates"].items(), key=_fastest))
    return f"chose {report['chosen']} in {report['seconds']:.0f} s; img/s: {rates}"


def tuning_overrides(check: Check) -> list[str]:
    return [
        "hardware=auto",
        "hardware.compile=false",
        f"hardware.tune_budget.seconds={check.tune_seconds}",
        "hardware.tune_budget.share=null",
    ]


def _fastest(item: tuple[str, float]) -> float:
    return -item[1]


def ranking(check: Check) -> str:
    """The tuner's ranking against 20 synchronised steps of each setting, one at a time."""
    if not check.tuned:
        raise Failed("no tuner result to compare")
    truth = truth_rates(check, list(check.tuned["rates"]))
    tuned = check.tuned["rates"]
    inverted = [
        f"{a} > {b}"
        for a, b in itertools.permutations(truth, 2)
        if truth[a] > truth[b] * (1 + RANK_MARGIN) and tuned[a] < tuned[b]
    ]
    best = max(truth.values())
    chosen = truth.get(check.tuned["chosen"], 0.0)
    text = ", ".join(f"{k} {v:.1f}" for k, v in sorted(truth.items(), key=_fastest))
    detail = f"truth img/s: {text}"
    if not check.cuda:
        return detail + " (not judged on a CPU)"
    if inverted or chosen < best / (1 + RANK_MARGIN):
        raise Failed(f"{detail}; tuner inverts {inverted or 'none'}, chose {chosen:.1f}")
    return detail + "; same ranking"


def truth_rates(check: Check, names: list[str]) -> dict[str, float]:
    """Images/s of each setting: 20 steps, each waited for, after 3 warm-up steps; the
    settings one after another, each one's model freed before the next is built."""
    from unetcli.core.hardware import release_memory, resolve_hardware, sync

    cfg = compose_train([*data_overrides(check, check.tune), *tuning_overrides(check)])
    base = resolve_hardware(cfg.hardware)
    loss_fn, batch = _loss_and_batch(cfg, check.tune)
    rates = {}
    for name in names:
        runtime = _candidate(name).runtime(base)
        with runtime.flags():
            step = _fresh(cfg, runtime, loss_fn)
            for _ in range(TRUTH_WARMUP):
                step(batch)
            sync(base.device)
            start = time.perf_counter()
            for _ in range(TRUTH_STEPS):
                step(batch)
                sync(base.device)
            rates[name] = TRUTH_STEPS * check.tune.batch / (time.perf_counter() - start)
        del step
        release_memory(base.device)
    return rates


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from unetcli.config.location import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="train", overrides=[*overrides, "paths.run_dir=unused"])


def _loss_and_batch(cfg, sizes: Sizes) -> tuple[object, dict]:
    from unetcli.config.instantiate import build
    from unetcli.core.task import Task

    loss_fn = build(cfg.loss, "loss", task=Task.from_config(cfg.dataset))
    generator = torch.Generator().manual_seed(0)
    shape = (sizes.batch, sizes.height, sizes.width)
    channels = int(cfg.dataset.in_channels)
    image = torch.randn(sizes.batch, channels, *shape[1:], generator=generator)
    mask = (torch.rand(shape, generator=generator) > 0.5).long()
    return loss_fn, {"image": image, "mask": mask}


def _candidate(name: str):
    from unetcli.tuning.candidates import Candidate

    return Candidate(name.split("-")[0], "-cl" in name, "-compiled" in name)


def _fresh(cfg, runtime, loss_fn) -> Callable[[dict], object]:
    from unetcli.training.step import fresh_step

    return fresh_step(cfg, runtime, loss_fn)


def fp16_scaler(check: Check) -> str:
    """fp16 with the grad scaler and gradient clipping: a finite loss, last.pt."""
    extra = ["hardware.tune=false", "hardware.precision=fp16", "trainer.grad_clip_norm=1.0"]
    output, result = train(check, "fp16", check.small, extra)
    loss = float(result["final"].get("train/loss", math.nan))
    if not math.isfinite(loss) or not (check.out / "fp16/checkpoints/last.pt").is_file():
        raise Failed(f"train/loss {loss}")
    skipped = result.get("scaler_skipped_steps", 0)
    return f"train/loss {loss:.4f}; {skipped} steps skipped by the scaler; grad_clip_norm 1.0"


def evaluate_devices(check: Check) -> str:
    """`unet evaluate` of one checkpoint on the GPU and on the CPU: the same Dice."""
    dice = {}
    for device in ("cuda", "cpu"):
        name = f"evaluate_{device}"
        args = [f"checkpoint={_checkpoint(check)}", f"hardware={device}", "hardware.tune=false"]
        unet(check, name, ["evaluate", "evaluate.progress=false", *args])
        dice[device] = json.loads((check.out / name / "metrics.json").read_text())["metrics"]
    gap = abs(dice["cuda"]["dice"] - dice["cpu"]["dice"])
    detail = f"Dice GPU {dice['cuda']['dice']:.5f}, CPU {dice['cpu']['dice']:.5f}"
    if gap > DICE_TOLERANCE:
        raise Failed(f"{detail}: differ by {gap:.5f} > {DICE_TOLERANCE}")
    return detail


def _checkpoint(check: Check) -> Path:
    if check.checkpoint is None:
        raise Failed("no checkpoint: the rule run failed")
    return check.checkpoint


def predict_tta_sliding(check: Check) -> str:
    """`unet predict` with TTA and sliding windows writes every test image's row."""
    side = min(check.small.height, check.small.width) // 2
    out = check.out / "predictions"
    args = [
        f"checkpoint={_checkpoint(check)}",
        "predict.tta=[hflip,vflip]",
        "predict.mode=sliding",
        f"predict.window=[{side},{side}]",
        "predict.progress=false",
        "hardware.tune=false",
        f"predict.output_dir={out}",
    ]
    output = unet(check, "predict", ["predict", *args])
    speed = [line for line in output.splitlines() if line.startswith("speed")]
    if not (out / "submission.csv.gz").is_file():
        raise Failed("no submission written")
    return (speed[0][len("speed") :].strip() if speed else "submission written") + ", TTA x3"


def profile_syncs(check: Check) -> str:
    """`debug=profile`: the device synchronisations per training step, from the trace."""
    train(check, "profile", check.small, ["hardware.tune=false", "debug=profile"])
    syncs, steps = syncs_in_steps(check.out / "profile" / "profile" / "trace.json")
    if not steps:
        raise Failed("no ProfilerStep in the trace")
    per_step = syncs / steps
    detail = f"{syncs} synchronisations in {steps} profiled steps ({per_step:.1f} a step)"
    if per_step > 1:
        raise Failed(detail + ": a step should wait for the GPU at most once")
    return detail


def syncs_in_steps(trace_file: Path) -> tuple[int, int]:
    """(CUDA *Synchronize calls inside the trace's ProfilerStep spans, the spans): the
    profiler's own waits at its start and end fall outside them."""
    trace = json.loads(trace_file.read_text())
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    spans = [
        (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))
        for e in events
        if str(e.get("name", "")).startswith("ProfilerStep#")
    ]
    times = [float(e["ts"]) for e in events if "Synchronize" in str(e.get("name", ""))]
    inside = sum(1 for t in times if any(a <= t <= b for a, b in spans))
    return inside, len(spans)


def compile_budget(check: Check) -> str:
    """torch.compile tried within the tuning budget (the eager winner against itself)."""
    budget = 2 * check.tune_seconds
    extra = [
        "hardware=auto",
        "hardware.compile=true",
        "hardware.precision=bf16",
        "hardware.channels_last=true",
        f"hardware.tune_budget.seconds={budget}",
        "hardware.tune_budget.share=null",
    ]
    train(check, "compile", check.tune, extra)
    report = hardware_json(check, "compile")
    detail = f"tuning took {report['seconds']:.0f} s of {budget} s; chose {report['chosen']}"
    compiled = [k for k in report["rates"] if k.endswith("-compiled")]
    detail += f"; compiled {'measured' if compiled else 'out: ' + str(report['dropped'])[:80]}"
    if report["seconds"] > budget + COMPILE_SLACK:
        raise Failed(detail)
    return detail


def cache_second_run(check: Check) -> str:
    """The tuner's run again: its choice read from the cache, nothing measured."""
    if not check.tuned:
        raise Failed("no first tuner run")
    started = time.perf_counter()
    train(check, "tune_again", check.tune, tuning_overrides(check))
    report = hardware_json(check, "tune_again")
    seconds = time.perf_counter() - started
    detail = f"source {report['source']}, chose {report['chosen']} ({seconds:.0f} s)"
    if report["source"] != "cache" or report["chosen"] != check.tuned["chosen"]:
        raise Failed(detail + f"; first run chose {check.tuned['chosen']}")
    return detail


def plan(check: Check) -> str:
    """`unet plan` for a 5-minute training budget writes its experiment."""
    sizes = check.small
    args = [
        "plan",
        "dataset=synthetic",
        *data_overrides(check, sizes)[:6],
        "plan.time_budget=5m",
        f"plan.measure_s={30 if check.cuda else 3}",
        f"plan.output_dir={check.out / 'plan_conf'}",
        f"plan.min_side={min(sizes.height, sizes.width) // 2}",
    ]
    if not check.cuda:
        args += ["plan.models=[unet_small]", "plan.batch_sizes=[1,2]", "plan.max_side=64"]
    output = unet(check, "plan", args, timeout=420)
    chosen = [line for line in output.splitlines() if line.startswith("chosen")]
    if not list((check.out / "plan_conf" / "experiment").glob("*.yaml")):
        raise Failed("no experiment written")
    return chosen[0][len("chosen") :].strip() if chosen else "experiment written"


def train_vs_bare(check: Check) -> str:
    """`unet train` images/s against its bare step (scripts/bench_train.py)."""
    sizes = check.small
    model = "unet" if check.cuda else "unet_small"
    args = ["--model", model, "--size", str(sizes.height), str(sizes.width)]
    args += ["--batch", str(sizes.batch), "--repeats", "1", "--epochs", "2"]
    if check.cuda:
        args += ["--rounds", "3", "--steps", "10", "--tune-seconds", str(check.tune_seconds)]
    else:  # the machinery only: its figures are not judged
        args += ["--rounds", "1", "--steps", "2", "--tune-seconds", "1"]
    command = [sys.executable, str(REPO / "scripts" / "bench_train.py"), *args]
    proc = subprocess.run(
        command, env=check.env(), capture_output=True, text=True, timeout=400, check=False
    )
    (check.out / "bench_train.log").write_text(proc.stdout + proc.stderr)
    ratio = [line for line in proc.stdout.splitlines() if "median ratio" in line]
    detail = ratio[0].split("; ")[-1] if ratio else f"no ratio (exit {proc.returncode})"
    if not ratio:
        raise Failed(detail + " (see bench_train.log)")
    if not check.cuda:
        return detail + " (not judged on a CPU)"
    if proc.returncode != 0:
        raise Failed(detail)
    return detail


#: (row name, check, needs CUDA)
CHECKS: list[tuple[str, Callable[[Check], str], bool]] = [
    ("environment", environment, False),
    ("rule run (hardware.tune=false)", rule_run, False),
    ("tuner, empty cache", tuner, False),
    ("tuner ranking vs 20 synced steps", ranking, False),
    ("fp16 + grad scaler + grad_clip_norm", fp16_scaler, True),
    ("evaluate GPU = CPU (Dice 1e-3)", evaluate_devices, True),
    ("predict TTA + sliding", predict_tta_sliding, False),
    ("debug=profile syncs per step", profile_syncs, True),
    ("compile within the budget", compile_budget, True),
    ("tuning cache, second run", cache_second_run, False),
    ("unet plan, 5-minute budget", plan, False),
    ("unet train vs bare step", train_vs_bare, False),
]


def run_check(check: Check, name: str, function: Callable[[Check], str], cuda: bool) -> Row:
    if cuda and not check.cuda:
        return Row(name, "skipped: no CUDA", "")
    started = time.perf_counter()
    try:
        detail, status = function(check), "pass"
    except Failed as err:
        detail, status = str(err), "FAIL"
    except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
        (check.out / f"{function.__name__}.error").write_text(traceback.format_exc())
        detail, status = f"{type(err).__name__}: {str(err)[:160]}", "FAIL"
    return Row(name, status, detail, time.perf_counter() - started)


def table(rows: list[Row], device: str) -> str:
    lines = [f"GPU check on {device}", "", "| check | result | s | detail |", "|---|---|---|---|"]
    for row in rows:
        detail = row.detail.replace("|", "/")
        lines.append(f"| {row.check} | {row.status} | {row.seconds:.0f} | {detail} |")
    return "\n".join(lines) + "\n"


def settings(args: argparse.Namespace) -> Check:
    """GPU: the 64-wide U-Net, the tuner at 256x256 batch 16. CPU: a tiny model, a few steps."""
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.cpu:
        tiny = Sizes(48, 64, 4, 6, ("model.widths=[4,8]",))
        return Check(out, False, tiny, tiny, tune_seconds=8, cpu_mode=True)
    small = Sizes(128, 128, 8, 24, ("model=unet",))
    tune = Sizes(256, 256, 16, 16, ("model=unet",))
    return Check(out, torch.cuda.is_available(), small, tune, tune_seconds=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny sizes; CUDA checks skipped")
    parser.add_argument("--out", default=str(REPO / "outputs" / "gpu_check"))
    args = parser.parse_args()
    check = settings(args)
    rows = []
    for name, function, cuda in CHECKS:
        rows.append(run_check(check, name, function, cuda))
        print(f"{rows[-1].status:>16}  {name}  {rows[-1].detail}", flush=True)
    device = torch.cuda.get_device_name() if check.cuda else "CPU (--cpu)"
    text = table(rows, device)
    (check.out / "gpu_check.md").write_text(text)
    print("\n" + text)
    return 1 if any(row.status == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
