"""`unet train cv=2fold` trains one job per fold; `unet evaluate ensemble=<sweep>` scores each
fold's validation images with that fold's model, exactly as evaluating each fold alone does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import only_run_dir, run_command, run_unet, tiny_overrides
from unetcli.evaluation.probabilities import ProbabilityStore
from unetcli.recipes.recipe import load_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A 2-fold sweep of tiny models, trained by the real `unet` (the basic launcher; the
    joblib launcher of the sweeps guide runs the same jobs, only at once)."""
    root = tmp_path_factory.mktemp("cv")
    run_unet(
        "train",
        "cv=2fold",
        *tiny_overrides(root, objects=10),
        "trainer.epochs=2",
        cwd=root,
    )
    found = only_run_dir(root / "outputs" / "train-multirun")
    assert sorted(p.name for p in found.glob("fold*")) == ["fold0", "fold1"]
    return found


def _rows(run_dir: Path) -> dict[str, dict[str, str]]:
    with (run_dir / "per_image.csv").open() as f:
        return {row["image"]: row for row in csv.DictReader(f)}


EVAL = ["hardware.num_workers=0", "hardware.tune=false", "evaluate.progress=false"]


def test_out_of_fold_scores_are_each_folds_own_evaluation(sweep, tmp_path):
    checkpoints = [sweep / f"fold{k}" / "checkpoints" / "best.pt" for k in (0, 1)]
    listed = f"ensemble=[{checkpoints[1]},{checkpoints[0]}]"  # folds come from the checkpoints
    oof = run_command(
        "evaluate", [listed, "evaluate.save_probabilities=true", *EVAL], tmp_path / "oof"
    )
    union = _rows(tmp_path / "oof")
    dice = []
    for k, checkpoint in enumerate(checkpoints):
        run_command("evaluate", [f"checkpoint={checkpoint}", *EVAL], tmp_path / f"fold{k}")
        own = _rows(tmp_path / f"fold{k}")
        assert own and all(union[name]["fold"] == str(k) for name in own)
        assert {n: r["dice"] for n, r in own.items()} == {n: union[n]["dice"] for n in own}
        dice += [float(r["dice"]) for r in own.values()]
    assert len(union) == len(dice)  # the union is exactly the two folds' images
    assert oof["metrics"]["dice"] == pytest.approx(np.mean(dice), abs=1e-6)
    store = ProbabilityStore(tmp_path / "oof")
    assert store.names() == sorted(union)
    truth, fold = store.truth_and_fold(store.names()[0])
    assert fold == int(union[store.names()[0]]["fold"]) and truth.shape == (48, 64)


def test_cv_sweep_then_search_writes_a_recipe(sweep, tmp_path):
    run_dir = tmp_path / "search"
    result = run_command(
        "evaluate",
        [
            f"ensemble={sweep}",
            "evaluate.search=true",
            "evaluate.search_steps=[threshold,tta,min_object_size,fill_holes,ensemble]",
            *EVAL,
        ],
        run_dir,
    )
    assert result["search"]["recipe"] == str(run_dir / "recipe.yaml")
    recipe = load_recipe(run_dir / "recipe.yaml")
    assert list(recipe.scores) == [
        "default", "threshold", "tta", "min_object_size", "fill_holes", "ensemble"
    ]  # fmt: skip
    scores = list(recipe.scores.values())
    assert all(b >= a - 1e-9 for a, b in zip(scores[:-2], scores[1:-1]))  # greedy: never worse
    views = {p.name for p in (run_dir / "probabilities").iterdir()}
    assert {"identity", "hflip", "transverse"} <= views  # each view predicted once, kept
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "out-of-fold" and metrics["folds"] == 2
