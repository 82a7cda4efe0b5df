"""What the tests share: composing a command's config, running a command in-process or
as the real `unet` subprocess, and the tiny synthetic settings that make runs quick.

Use `run_command` unless the subprocess itself is under test (argument dispatch,
exit codes, messages on stderr, Hydra's run folders and multirun, the installed
console script): it runs the same `unetcli.commands.<command>.run(cfg)` that the
Hydra entry point calls, on a config composed from the same YAML, without the
seconds each new Python process spends importing torch.
"""

from __future__ import annotations

import copy
import functools
import importlib
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from unetcli.config.location import config_dir

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def compose(command: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config `unet COMMAND OVERRIDES...` would run with (conf/<command>.yaml composed).

    Hydra's own `hydra:` node is left out, so `paths.run_dir` (which reads
    Hydra's runtime) cannot be resolved: `run_command` sets it, or pass
    `paths.run_dir=...` as an override. Each call returns a fresh copy, free to
    change; a composition is cached because Hydra takes ~0.2 s for each.
    """
    return copy.deepcopy(_composed(command, tuple(overrides)))


@functools.lru_cache(maxsize=256)
def _composed(command: str, overrides: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose(config_name=command, overrides=list(overrides))


def run_command(command: str, overrides: Sequence[str], run_dir: Path) -> Any:
    """Run `unet COMMAND OVERRIDES...` in this process, writing into `run_dir`.

    Composes the config as the CLI does, points `paths.run_dir` at `run_dir`
    (where Hydra would have made a fresh run folder; created here as Hydra
    does) and returns what `unetcli.commands.<command>.run(cfg)` returns (for
    train: the content of result.json). A UnetError propagates instead of
    becoming exit status 1.
    """
    cfg = compose(command, overrides)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.paths.run_dir = str(run_dir)
    module = importlib.import_module(f"unetcli.commands.{command}")
    return module.run(cfg)


def tiny_overrides(root: Path, objects: int = 80) -> list[str]:
    """A synthetic set and model small enough for a few seconds of CPU training.

    `objects` objects of two views each at 48x64 (the default: 128 training and
    32 validation images, enough for Dice to rise clearly within 10 epochs and
    carry over to the test images); a handful is enough where a run only has to
    complete.
    """
    return [
        f"paths.data_dir={root / 'data'}",
        f"paths.output_root={root / 'outputs'}",
        f"dataset.layout.num_objects={objects}",
        "dataset.layout.views=2",
        "dataset.layout.num_test=6",
        "dataset.layout.height=48",
        "dataset.layout.width=64",
        "dataset.image_size=[48,64]",
        "model.widths=[8,16,32,64]",
        "trainer.batch_size=8",
        "trainer.progress=false",
        "hardware.num_workers=0",
        # The tuner has its own tests (test_tuning.py); other runs use the rule at once.
        "hardware.tune=false",
    ]


def unet_command() -> list[str]:
    """The installed `unet` console script beside this Python, else `python -m unetcli`."""
    script = Path(sys.executable).parent / "unet"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unetcli"]


def run_unet(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `unet ARGS` in a subprocess and return the CompletedProcess."""
    full_env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", **(env or {})}
    proc = subprocess.run(
        [*unet_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"unet {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def only_run_dir(parent: Path) -> Path:
    """The single run folder Hydra made under `parent` (fails if there are none or several)."""
    runs = sorted(p for p in parent.iterdir() if p.is_dir())
    assert len(runs) == 1, f"expected one run folder in {parent}, found {runs}"
    return runs[0]


def gzip_member_ends(data: bytes) -> list[int]:
    """Byte offsets where each gzip member of `data` ends."""
    ends, offset = [], 0
    while offset < len(data):
        decoder = zlib.decompressobj(wbits=31)
        decoder.decompress(data[offset:])
        offset = len(data) - len(decoder.unused_data)
        ends.append(offset)
    return ends


def interruptible() -> None:
    """Popen preexec_fn: Ctrl-C as a terminal gives it. A shell starts background jobs with
    SIGINT ignored and children inherit that, so a test suite started with `&` would
    otherwise send its SIGINTs to processes that cannot hear them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tuning_config(root: Path, *extra: str):
    """The tiny training run with the tuner on: 3 s or 3 rounds of measuring, no share limit."""
    overrides = [
        *tiny_overrides(root, objects=4),
        "hardware=cpu",
        "hardware.tune=true",
        "hardware.tune_budget.seconds=3",
        "hardware.tune_budget.share=null",
        "hardware.tune_budget.rounds=3",
        f"paths.run_dir={root / 'run'}",
        *extra,
    ]
    return compose("train", overrides)
