"""Shared test helpers: run the real `unet` command on a tiny synthetic config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]


def unet_command() -> list[str]:
    """The installed `unet` console script beside this Python, else `python -m unetcli`."""
    script = Path(sys.executable).parent / "unet"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unetcli"]


def tiny_overrides(root: Path) -> list[str]:
    """A synthetic set and model small enough for a few seconds of CPU training."""
    return [
        f"paths.data_dir={root / 'data'}",
        f"paths.output_root={root / 'outputs'}",
        "dataset.layout.num_objects=80",
        "dataset.layout.views=2",
        "dataset.layout.num_test=6",
        "dataset.layout.height=48",
        "dataset.layout.width=64",
        "dataset.image_size=[48,64]",
        "model.widths=[8,16,32,64]",
        "trainer.batch_size=8",
        "trainer.progress=false",
        "hardware.num_workers=0",
    ]


def run_unet(*args: str, cwd: Path, check: bool = True, env: dict | None = None):
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
    runs = sorted(p for p in parent.iterdir() if p.is_dir())
    assert len(runs) == 1, f"expected one run folder in {parent}, found {runs}"
    return runs[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
