"""`unet predict` of a checkpoint logs to its training run: the predict/* metrics and the
submission, traced by path, size and SHA-256 (the file itself with
logger.mlflow.log_submission=true), read back through MlflowClient from the local store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_command, tiny_overrides

pytestmark = pytest.mark.slow
TINY = ["model.widths=[4,8]", "hardware=cpu", "hardware.precision=fp32", "trainer.epochs=1"]


def train_and_predict(root: Path, *logger: str) -> tuple[MlflowClient, str, Path]:
    """A tiny run logged to MLflow, then predict of its best.pt; (client, run id, file)."""
    run_command("train", [*tiny_overrides(root, objects=6), *TINY, "logger=[mlflow]", *logger],
                root / "run")  # fmt: skip
    args = [f"checkpoint={root / 'run/checkpoints/best.pt'}", "hardware=cpu",
            f"paths.output_root={root / 'outputs'}", "hardware.num_workers=0",
            "hardware.tune=false", "predict.progress=false"]  # fmt: skip
    submission = run_command("predict", args, root / "outputs" / "predict" / "p1")
    client = MlflowClient(f"sqlite:///{root / 'outputs/mlruns/mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    return client, run.info.run_id, Path(submission)


def test_predict_logs_its_numbers_and_traces_the_submission(tmp_path):
    client, run_id, submission = train_and_predict(tmp_path)
    (images,) = client.get_metric_history(run_id, "predict/images")
    assert images.value == 6 and client.get_metric_history(run_id, "predict/seconds")
    tags = client.get_run(run_id).data.tags
    assert tags["predict.submission"] == str(submission.resolve())
    assert tags["predict.submission_bytes"] == str(submission.stat().st_size)
    assert tags["predict.submission_sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    files = {a.path for a in client.list_artifacts(run_id, "predict/p1")}
    assert files == {"predict/p1/submission.txt"}  # by default the file is not copied
    text = Path(client.download_artifacts(run_id, "predict/p1/submission.txt", str(tmp_path)))
    assert str(submission.resolve()) in text.read_text()


def test_log_submission_uploads_the_file_into_the_training_run(tmp_path):
    client, run_id, submission = train_and_predict(tmp_path, "logger.mlflow.log_submission=true")
    name = f"predict/p1/{submission.name}"
    assert name in {a.path for a in client.list_artifacts(run_id, "predict/p1")}
    kept = Path(client.download_artifacts(run_id, name, str(tmp_path / "back")))
    assert kept.read_bytes() == submission.read_bytes()
