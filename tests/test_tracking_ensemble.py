"""`unet evaluate ensemble=` of a 2-fold sweep logged with MLflow: the out-of-fold scores,
the recipe search and its files land on the sweep's parent run (read back through
MlflowClient from the local store) and on a W&B run in the sweep's group (offline files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_command, tiny_overrides
from tests.wandb_records import run_files, summary

pytestmark = pytest.mark.slow
TINY = ["model.widths=[4,8]", "hardware=cpu", "hardware.precision=fp32", "trainer.epochs=1"]
EVAL = ["hardware=cpu", "hardware.num_workers=0", "hardware.tune=false",
        "evaluate.progress=false"]  # fmt: skip


def test_an_ensemble_evaluation_logs_to_the_sweeps_parent_run(tmp_path):
    sweep = tmp_path / "outputs" / "train-multirun" / "cv"
    base = [*tiny_overrides(tmp_path, objects=10), *TINY, "logger=[tensorboard,mlflow,wandb]",
            "logger.wandb.mode=offline", "dataset.folds=2", f"tracking.group={sweep}"]  # fmt: skip
    for fold in (0, 1):  # the two jobs of `unet train cv=2fold`, one group
        run_command("train", [*base, f"dataset.fold={fold}"], sweep / f"fold{fold}")
    run_dir = tmp_path / "outputs" / "evaluate" / "oof"
    args = [f"ensemble={sweep}", f"paths.output_root={tmp_path / 'outputs'}", *EVAL,
            "evaluate.search=true",
            "evaluate.search_steps=[threshold,min_object_size]"]  # fmt: skip
    result = run_command("evaluate", args, run_dir)

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs/mlruns/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("unet.parent") == "true"]
    assert len(runs) == 3 and parent.info.run_name == "cv"  # no run beside the sweep's
    (dice,) = client.get_metric_history(parent.info.run_id, "evaluate/out-of-fold/dice")
    assert dice.value == pytest.approx(result["metrics"]["dice"])
    assert dice.value == pytest.approx(json.loads((run_dir / "metrics.json").read_text())
                                       ["metrics"]["dice"])  # fmt: skip
    chosen = client.get_metric_history(parent.info.run_id, "evaluate/recipe/dice")
    assert [m.value for m in chosen] == [pytest.approx(result["search"]["steps"][-1]["dice"])]
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluate/oof")}
    assert {f"evaluate/oof/{n}" for n in ("metrics.json", "per_image.csv", "recipe.yaml")} <= files
    recipe = client.download_artifacts(parent.info.run_id, "evaluate/oof/recipe.yaml",
                                       str(tmp_path))  # fmt: skip
    assert Path(recipe).read_text() == (run_dir / "recipe.yaml").read_text()
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    (wandb_file,) = run_files(run_dir)  # W&B: a new run in the folds' group
    linked = summary(wandb_file)
    assert linked["group"] == "cv" and "recipe.yaml" in linked["artifacts"]
    (row,) = [r for r in linked["history"] if "evaluate/out-of-fold/dice" in r]
    assert float(row["evaluate/out-of-fold/dice"]) == pytest.approx(result["metrics"]["dice"])


def test_folds_trained_apart_get_a_linked_run_naming_them(tmp_path):
    base = [*tiny_overrides(tmp_path, objects=10), *TINY, "logger=[mlflow]", "dataset.folds=2"]
    folds = tmp_path / "folds"
    for fold in (0, 1):  # no tracking.group: two runs on their own
        run_command("train", [*base, f"dataset.fold={fold}"], folds / f"fold{fold}")
    args = [f"ensemble={folds}", f"paths.output_root={tmp_path / 'outputs'}", *EVAL]
    result = run_command("evaluate", args, tmp_path / "outputs" / "evaluate" / "oof")

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs/mlruns/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    (linked,) = [r for r in runs if "unet.members" in r.data.tags]
    trained = {r.info.run_id for r in runs} - {linked.info.run_id}
    assert set(linked.data.tags["unet.members"].split(",")) == trained and len(trained) == 2
    assert linked.info.run_name == "evaluate/oof"
    (dice,) = client.get_metric_history(linked.info.run_id, "evaluate/out-of-fold/dice")
    assert dice.value == pytest.approx(result["metrics"]["dice"])
    assert "evaluate/oof/per_image.csv" in {
        a.path for a in client.list_artifacts(linked.info.run_id, "evaluate/oof")
    }
