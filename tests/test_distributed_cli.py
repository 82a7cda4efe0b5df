"""`unet train hardware.devices=2` as users run it: a sweep of two jobs, and a process killed."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import only_run_dir, run_unet, unet_command
from tests.test_distributed_training import overrides

pytestmark = pytest.mark.slow


def test_a_sweep_runs_each_job_in_two_processes_with_one_run_folder_each(tmp_path):
    proc = run_unet(
        "train",
        "-m",
        *overrides(tmp_path, 2, "trainer.epochs=1", "hardware.devices=2"),
        "seed=1,2",
        cwd=tmp_path,
    )
    sweep = only_run_dir(tmp_path / "outputs" / "train-multirun")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job in jobs:
        run = sweep / job
        assert (run / "checkpoints" / "last.pt").is_file() and (run / ".hydra").is_dir()
        assert len(list((run / "tensorboard").iterdir())) == 1
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert "seed=1" in rows[0]["overrides"].split() and "seed=2" in rows[1]["overrides"].split()
    assert all(r["best_value"] for r in rows)
    assert proc.stdout.count("2 processes = 4 per step") == 2


def _workers(parent: int) -> list[int]:
    """The training processes torch.multiprocessing started for `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def test_a_process_killed_mid_epoch_ends_the_job_with_a_clear_message(tmp_path):
    args = overrides(tmp_path, 2, "trainer.epochs=500", "hardware.devices=2")
    job = subprocess.Popen(
        [*unet_command(), "train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "outputs").glob("train/*/checkpoints/last.pt")):
            assert job.poll() is None and time.time() < deadline, job.communicate()
            time.sleep(0.2)
        workers = _workers(job.pid)
        assert len(workers) == 2
        os.kill(workers[-1], signal.SIGKILL)
        killed = time.time()
        out, err = job.communicate(timeout=60)
        assert time.time() - killed < 60
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 1
    assert "of 2 failed, so all 2 were stopped" in err and "killed by SIGKILL" in err
    last = only_run_dir(tmp_path / "outputs" / "train") / "checkpoints" / "last.pt"
    assert f"trainer.resume={last}" in " ".join(err.split())
    assert "Traceback" not in err
    assert not _workers(job.pid)
