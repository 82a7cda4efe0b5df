"""MLflow's local store, read back through MlflowClient: what a run, a resumed run, and
evaluate of its checkpoint log; a server that cannot be reached costs a warning only."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from mlflow import tracking as mlflow_tracking

from tests.helpers import run_command, tiny_overrides
from unetcli.tracking.interface import flatten

pytestmark = pytest.mark.slow

TINY = ["model.widths=[4,8]", "hardware=cpu", "hardware.precision=fp32"]


def client(root: Path):
    return mlflow_tracking.MlflowClient(f"sqlite:///{root / 'outputs' / 'mlruns' / 'mlflow.db'}")


def runs_of(root: Path) -> list:
    c = client(root)
    experiment = c.get_experiment_by_name("synthetic")
    return c.search_runs([experiment.experiment_id])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    overrides = [*tiny_overrides(root, objects=6), *TINY, "trainer.epochs=2",
                 "logger=[tensorboard,mlflow]"]  # fmt: skip
    run_command("train", overrides, root / "run")
    return root


def test_the_run_holds_the_config_metrics_and_artifacts(trained):
    (run,) = runs_of(trained)
    c = client(trained)
    state = torch.load(trained / "run/checkpoints/last.pt", weights_only=True)
    params = dict(run.data.params)
    assert params.pop("hardware.choice").startswith("cpu")
    assert params == flatten(state["config"])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert [m.step for m in c.get_metric_history(run.info.run_id, "val/dice")] == [1, 2]
    assert len(c.get_metric_history(run.info.run_id, "lr")) == 2
    assert len(c.get_metric_history(run.info.run_id, "train/loss")) == state["global_step"]
    files = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"best.pt", "metrics.csv", "result.json", "hardware.txt", "images"} <= files
    assert run.data.tags["torch_version"] == torch.__version__
    assert len(run.data.tags.get("git_commit", "0" * 40)) == 40
    assert state["tracking"]["mlflow"]["run_id"] == run.info.run_id
    assert (trained / "run" / "metrics.csv").is_file() and (trained / "run/tensorboard").is_dir()


def test_evaluate_of_the_checkpoint_logs_to_its_training_run(trained):
    best = trained / "run/checkpoints/best.pt"
    args = [f"checkpoint={best}", f"paths.output_root={trained / 'outputs'}", "hardware=cpu",
            "hardware.tune=false", "hardware.num_workers=0", "evaluate.progress=false"]  # fmt: skip
    run_command("evaluate", args, trained / "evaluate")
    (run,) = runs_of(trained)
    c = client(trained)
    assert c.get_metric_history(run.info.run_id, "evaluate/val/dice")
    files = {a.path for a in c.list_artifacts(run.info.run_id, f"{trained.name}/evaluate")}
    assert {f"{trained.name}/evaluate/{n}" for n in ("metrics.json", "per_image.csv")} <= files


def test_a_resumed_run_continues_the_same_tracker_run(tmp_path):
    base = [*tiny_overrides(tmp_path, objects=6), *TINY, "logger=[mlflow]"]
    run_command("train", [*base, "trainer.epochs=1"], tmp_path / "first")
    last = tmp_path / "first/checkpoints/last.pt"
    run_command("train", [*base, "trainer.epochs=2", f"trainer.resume={last}"], tmp_path / "on")
    (run,) = runs_of(tmp_path)
    history = client(tmp_path).get_metric_history(run.info.run_id, "val/dice")
    assert sorted(m.step for m in history) == [1, 2] and run.info.status == "FINISHED"


def test_an_unreachable_server_warns_once_and_the_run_finishes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    overrides = [*tiny_overrides(tmp_path, objects=6), *TINY, "trainer.epochs=2",
                 "logger=[tensorboard,mlflow]",
                 f"logger.mlflow.tracking_uri=http://127.0.0.1:{port}"]  # fmt: skip
    result = run_command("train", overrides, tmp_path / "run")
    err = capsys.readouterr().err
    assert err.count("warning: the mlflow logger failed") == 1, err
    assert result["epochs"] == 2
    assert {p.name for p in (tmp_path / "run/checkpoints").iterdir()} >= {"best.pt", "last.pt"}
    assert "mlflow" not in torch.load(tmp_path / "run/checkpoints/last.pt")["tracking"]
