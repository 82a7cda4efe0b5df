"""Sweeps through Hydra's real launchers and the Optuna sweeper (the `cluster` extra).

Every test runs the real `unet train -m` in a subprocess (the launchers, the
sweeper and the exit status are what is under test), on the tiny synthetic set
with one or two steps per job.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests.helpers import run_unet, tiny_overrides, unet_command

pytestmark = pytest.mark.slow

QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=1", "trainer.log_images=0"]


def sweep_args(tmp_path: Path, sweep_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "-m", *tiny_overrides(tmp_path, objects=6), *QUICK,
        f"hydra.sweep.dir={sweep_dir}", *extra,
    ]


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def job_record(job_dir: Path) -> dict:
    return json.loads((job_dir / "sweep_job.json").read_text())


def test_joblib_runs_two_jobs_at_once_and_divides_the_cores(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_unet(
        *sweep_args(tmp_path, sweep, "optimizer.lr=1e-3,3e-4", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2"),
        cwd=tmp_path,
    )
    first, second = (job_record(sweep / job) for job in ("0", "1"))
    assert first["pid"] != second["pid"]
    # Both ran at the same time: each started before the other finished.
    assert first["started"] < second["finished"] and second["started"] < first["finished"]
    assert "2 jobs at once" in proc.stdout
    assert all((sweep / job / "result.json").is_file() for job in ("0", "1"))
    assert {r["status"] for r in summary_rows(sweep)} == {"done"}
    assert (sweep / "summary.png").stat().st_size > 0


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    sweep = tmp_path / "sweep"
    run_unet(*sweep_args(tmp_path, sweep, "optimizer.lr=1e-3,3e-4",
                         "hydra/launcher=submitit_local"), cwd=tmp_path)
    pids = {job_record(sweep / job)["pid"] for job in ("0", "1")}
    assert len(pids) == 2
    assert (sweep / ".submitit").is_dir()  # submitit's own job folders
    assert [r["status"] for r in summary_rows(sweep)] == ["done", "done"]


def test_an_interrupted_sweep_runs_only_the_remaining_jobs_and_a_failure_is_reported(tmp_path):
    sweep = tmp_path / "sweep"
    # The second job fails (Adam refuses a negative learning rate).
    args = sweep_args(tmp_path, sweep, "optimizer.lr=1e-3,-1.0,3e-4")
    first = subprocess.Popen([*unet_command(), *args], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = sweep / "0" / "result.json"
    deadline = time.time() + 300
    while not done.is_file() and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # the machine goes away after the first job
    first.wait()
    assert done.is_file() and not (sweep / "2").exists()
    started_first = job_record(sweep / "0")["started"]

    proc = run_unet(*args, cwd=tmp_path, check=False)
    assert "sweep job 0: already done" in proc.stdout
    assert job_record(sweep / "0")["started"] == started_first  # not run again
    assert proc.returncode == 1  # a job failed; the others completed
    rows = {r["job"]: r for r in summary_rows(sweep)}
    assert rows["0"]["status"] == rows["2"]["status"] == "done"
    assert rows["1"]["status"] == "failed"
    assert "optimizer.lr=-1.0 is not valid" in rows["1"]["error"]
    assert "Traceback" not in proc.stderr and "1 sweep job(s) failed (1)" in proc.stderr
    assert (sweep / "2" / "checkpoints" / "best.pt").is_file()


def test_an_optuna_search_continues_its_study_when_started_again(tmp_path):
    sweep = tmp_path / "search"
    args = sweep_args(tmp_path, sweep, "hparams_search=unet_optuna")
    run_unet(*args, "hydra.sweeper.n_trials=4", cwd=tmp_path)
    storage = f"sqlite:///{sweep}/optuna.db"
    assert len(optuna.load_study(study_name="unet", storage=storage).trials) == 4
    assert len(summary_rows(sweep)) == 4 and (sweep / "summary.png").is_file()

    run_unet(*args, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    study = optuna.load_study(study_name="unet", storage=storage)
    assert len(study.trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    rows = summary_rows(sweep)
    assert len(rows) == 6 and len({r["run_dir"] for r in rows}) == 6
    # Each searched parameter is a column (trainer.batch_size is fixed by tiny_overrides).
    for name in ("optimizer.lr", "loss", "augmentation"):
        assert name in rows[0]
    values = [float(r["best_value"]) for r in rows]
    assert values == sorted(values, reverse=True)  # best first (val/dice: max)
