"""SIGTERM in the middle of an epoch: a mid-epoch last.pt, and a resume equal to no interruption.

The interrupted run is the real `unet train` in a subprocess, stopped with a
real SIGTERM as soon as its first epoch is logged; the reference and the
resumed run go in-process. CPU, fp32, no loader workers, fixed seed: the weights
must be bit-for-bit equal.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import torch

from tests.helpers import run_command, tiny_overrides, unet_command
from unetcli.training.preemption import PREEMPTED_EXIT

EXACT = [
    "hardware=cpu", "hardware.precision=fp32", "hardware.channels_last=false",
    "trainer.epochs=3", "trainer.max_steps_per_epoch=8", "trainer.log_images=0",
    "scheduler=onecycle",  # a per-step schedule: its position must resume exactly too
]


def interrupted_run(tmp_path, overrides: list[str]) -> subprocess.CompletedProcess:
    """`unet train` stopped with SIGTERM once its first epoch is in metrics.csv."""
    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [*unet_command(), "train", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    metrics = run_dir / "metrics.csv"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    overrides = [*tiny_overrides(tmp_path, objects=40), *EXACT]
    stopped = interrupted_run(tmp_path, overrides)
    assert stopped.returncode == PREEMPTED_EXIT, stopped.stdout
    assert "SIGTERM received" in stopped.stdout
    last = tmp_path / "interrupted" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=False)
    position = state["position"]
    assert 1 <= position["step"] < 8, position  # stopped inside an epoch, not at its end
    assert state["epoch"] == position["epoch"] - 1

    resumed = run_command("train", [*overrides, f"trainer.resume={last}"], tmp_path / "resumed")
    whole = run_command("train", overrides, tmp_path / "whole")
    assert resumed["epochs"] == whole["epochs"] == 3
    a = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 24
    for name, tensor in b["model"].items():
        assert torch.equal(a["model"][name], tensor), name
    assert a["metrics"] == b["metrics"]
