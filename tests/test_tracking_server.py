"""An MLflow tracking server on loopback receives a run; two CPU processes log once."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import tracking as mlflow_tracking

from tests.helpers import run_command, tiny_overrides

pytestmark = pytest.mark.slow
TINY = ["model.widths=[4,8]", "hardware=cpu", "hardware.precision=fp32", "trainer.epochs=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`mlflow server` on 127.0.0.1 only, stopped at the end; its URI."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
               "--artifacts-destination", str(tmp_path / "server-artifacts")]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_tracking_server_receives_the_run(tmp_path, server):
    overrides = [*tiny_overrides(tmp_path, objects=6), *TINY, "logger=[mlflow]",
                 f"logger.mlflow.tracking_uri={server}"]  # fmt: skip
    run_command("train", overrides, tmp_path / "run")
    client = mlflow_tracking.MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val/dice")) == 2
    assert "best.pt" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert not (tmp_path / "outputs" / "mlruns").exists()  # nothing in the local store


def test_two_processes_log_once(tmp_path):
    overrides = [*tiny_overrides(tmp_path, objects=6), *TINY, "hardware.devices=2",
                 "logger=[tensorboard,mlflow]"]  # fmt: skip
    run_command("train", overrides, tmp_path / "run")
    client = mlflow_tracking.MlflowClient(f"sqlite:///{tmp_path / 'outputs/mlruns/mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/dice")] == [1, 2]
    assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 1
