"""`unet train hardware.devices=2` as users run it: a sweep of two jobs, a process killed,
and Ctrl-C."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import interruptible, only_run_dir, run_unet, unet_command
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


def _processes() -> dict[int, tuple[int, str, bytes]]:
    """pid -> (parent pid, state, command line) of every process on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            found[int(entry.name)] = (int(stat[1]), stat[0], (entry / "cmdline").read_bytes())
        except OSError:
            continue
    return found


def _descendants(root: int) -> set[int]:
    """Every process started by `root`, its children's children included."""
    table, found, todo = _processes(), set(), [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found.update(children)
        todo += children
    return found


def _running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie waiting for its parent to read it is not)."""
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


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


def _long_two_process_run(tmp_path) -> dict:
    """Popen keywords of a `unet train hardware.devices=2` run that would go on for long."""
    args = overrides(tmp_path, 2, "trainer.epochs=500", "hardware.devices=2")
    return dict(
        args=[*unet_command(), "train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
        preexec_fn=interruptible,
    )


def _wait_for_a_checkpoint(job: subprocess.Popen, tmp_path) -> None:
    """Until the run has written last.pt (training is under way), or fail with its output."""
    deadline = time.time() + 240
    while not list((tmp_path / "outputs").glob("train/*/checkpoints/last.pt")):
        assert job.poll() is None and time.time() < deadline, job.communicate()
        time.sleep(0.2)


def test_a_process_killed_mid_epoch_ends_the_job_with_a_clear_message(tmp_path):
    job = subprocess.Popen(**_long_two_process_run(tmp_path))
    try:
        _wait_for_a_checkpoint(job, tmp_path)
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


def test_ctrl_c_stops_every_process_and_names_the_last_good_checkpoint(tmp_path):
    """Ctrl-C in a terminal: SIGINT to the whole process group (the launching process and the
    two training processes), once the first checkpoint is written."""
    # Its own process group, as a shell gives a command.
    job = subprocess.Popen(**_long_two_process_run(tmp_path), start_new_session=True)
    try:
        _wait_for_a_checkpoint(job, tmp_path)
        started = _descendants(job.pid)
        assert len(_workers(job.pid)) == 2 and set(_workers(job.pid)) <= started
        os.killpg(job.pid, signal.SIGINT)
        interrupted = time.time()
        out, err = job.communicate(timeout=60)
        assert time.time() - interrupted < 60
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    text = " ".join(err.split())
    # As a single process's Ctrl-C: status 1, one paragraph, where to continue from.
    assert job.returncode == 1, err
    assert "interrupted; all 2 processes were stopped" in text and "Traceback" not in text
    last = only_run_dir(tmp_path / "outputs" / "train") / "checkpoints" / "last.pt"
    assert f"The last good checkpoint is {last}; continue with trainer.resume={last}" in text
    assert torch.load(last, weights_only=False)["epoch"] >= 1
    deadline = time.time() + 10  # a process killed last may take a moment to be gone
    while _running(started) and time.time() < deadline:
        time.sleep(0.2)
    assert not _running(started)
