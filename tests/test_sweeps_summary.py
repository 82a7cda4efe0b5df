"""The sweep summary read from job folders, `unet sweep-summary`, and the missing-plugin error.

The job folders are written here the way a sweep leaves them (a finished job,
a failed one, one still running), so no training is needed.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from tests.helpers import run_command
from unetcli.errors import UnetError
from unetcli.sweeps.plugins import check_plugins
from unetcli.sweeps.rows import collect


def write_job(sweep: Path, num: int, lr: str, status: str, curve: list[float] | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"optimizer.lr={lr}", "trainer.epochs=3"]
    record = {"job": num, "overrides": overrides, "status": status, "pid": 1,
              "started": 0.0, "finished": None,
              "error": "ValueError: Invalid learning rate" if status == "failed" else None}
    (job / "sweep_job.json").write_text(json.dumps(record))
    if curve:
        rows = ["epoch,train_loss,val_dice"] + [f"{i + 1},0.5,{v}" for i, v in enumerate(curve)]
        (job / "metrics.csv").write_text("\n".join(rows) + "\n")
    if status == "done":
        result = {"monitor": "val/dice", "mode": "max", "best_value": max(curve),
                  "best_epoch": curve.index(max(curve)) + 1, "epochs": len(curve), "seconds": 1}
        (job / "result.json").write_text(json.dumps(result))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep"
    write_job(sweep, 0, "0.001", "done", [0.2, 0.5, 0.4])
    write_job(sweep, 1, "-1.0", "failed", None)
    write_job(sweep, 2, "0.0003", "done", [0.3, 0.6, 0.7])
    write_job(sweep, 3, "0.0001", "running", [0.1])  # still training: no result.json yet
    return sweep


def test_rows_are_best_first_with_unfinished_and_failed_jobs_last(sweep):
    summary = collect(sweep)
    assert [r["job"] for r in summary.rows[:2]] == ["2", "0"]
    assert {r["job"]: r["status"] for r in summary.rows[2:]} == {"1": "failed", "3": "running"}
    assert summary.params == ["optimizer.lr"]  # trainer.epochs is the same for every job
    assert [r["job"] for r in summary.failed] == ["1"]


def test_sweep_summary_command_rebuilds_csv_and_png_of_a_running_sweep(sweep, tmp_path):
    run_command("sweep_summary", [f"sweep_summary.dir={sweep}"], tmp_path / "run")
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows][:2] == ["2", "0"]
    assert rows[0]["optimizer.lr"] == "0.0003" and float(rows[0]["best_value"]) == 0.7
    failed = next(r for r in rows if r["job"] == "1")
    assert failed["status"] == "failed" and "Invalid learning rate" in failed["error"]
    png = (sweep / "summary.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_sweep_summary_of_a_folder_without_jobs_is_a_clear_error(tmp_path):
    with pytest.raises(UnetError, match="holds no sweep job"):
        run_command("sweep_summary", [f"sweep_summary.dir={tmp_path}"], tmp_path / "run")


def test_a_launcher_whose_plugin_is_missing_names_the_extra(monkeypatch):
    check_plugins(["hydra/launcher=joblib", "hparams_search=unet_optuna"])  # installed here
    # A module set to None in sys.modules fails to import, as an uninstalled one does.
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_joblib_launcher", None)
    with pytest.raises(UnetError, match=r'pip install "unetcli\[cluster\]"'):
        check_plugins(["optimizer.lr=1e-3,3e-4", "hydra/launcher=joblib"])
    check_plugins(["hydra/launcher=submitit_local"])  # other launchers are unaffected
