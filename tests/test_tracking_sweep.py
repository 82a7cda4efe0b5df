"""A real `unet train -m` sweep with MLflow and W&B: one parent run with the jobs as its
children, one W&B group; the package code of this checkout runs (python -m unetcli)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import tracking as mlflow_tracking

from tests.helpers import tiny_overrides
from tests.wandb_records import run_files, summary

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def unet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO),
           "WANDB_MODE": "offline"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "unetcli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_a_sweep_is_one_parent_with_two_children_and_one_wandb_group(tmp_path):
    unet("train", "-m", "optimizer.lr=1e-3,3e-4", "logger=[tensorboard,mlflow,wandb]",
         "trainer.epochs=2", "model.widths=[4,8]", "hardware=cpu",
         *tiny_overrides(tmp_path, objects=6), cwd=tmp_path)  # fmt: skip
    (sweep,) = (tmp_path / "outputs" / "train-multirun").iterdir()
    client = mlflow_tracking.MlflowClient(f"sqlite:///{tmp_path / 'outputs/mlruns/mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic").experiment_id
    runs = client.search_runs([experiment])
    parents = [r for r in runs if r.data.tags.get("unet.parent") == "true"]
    assert len(parents) == 1 and parents[0].info.run_name == sweep.name
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(children) == 2 == len(runs) - 1
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {r.data.params["optimizer.lr"] for r in children} == {"0.001", "0.0003"}
    for child in children:
        assert len(client.get_metric_history(child.info.run_id, "val/dice")) == 2
        assert "best.pt" in {a.path for a in client.list_artifacts(child.info.run_id)}
    wandb_runs = [summary(f) for job in ("0", "1") for f in run_files(sweep / job)]
    assert [r["group"] for r in wandb_runs] == [sweep.name] * 2
    for run in wandb_runs:
        assert len([row for row in run["history"] if "val/dice" in row]) == 2
        assert {"best.pt", "metrics.csv", "result.json"} <= set(run["artifacts"])
        assert "optimizer.lr" in run["config"] and any(t.startswith("torch_version=")
                                                       for t in run["tags"])  # fmt: skip
