"""The recipe search picks, on constructed out-of-fold probabilities, the threshold, object
size, hole filling and ensemble choice whose answers are known."""

from __future__ import annotations

import numpy as np

from unetcli.core.task import Task
from unetcli.evaluation.probabilities import IDENTITY, ProbabilityStore
from unetcli.recipes.recipe import Recipe, load_recipe, save_recipe
from unetcli.recipes.steps import Search, min_sizes, run_search

H, W = 48, 64
THRESHOLDS = [0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6]


def _image(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (1, H, W), truth): an object at 0.3 with a 0.1 hole in it, a 0.22 band
    along the top border, and 0.9 specks of 2x2 pixels away from the object."""
    truth = np.zeros((H, W), np.uint8)
    truth[16:40, 10 + k : 40 + k] = 1
    probs = np.full((H, W), 0.02, np.float32)
    probs[truth == 1] = 0.3
    probs[24:28, 20 + k : 24 + k] = 0.1  # a hole: the object has none
    probs[0:3, :] = 0.22  # only thresholds above 0.22 drop the band
    for y, x in ((6, 50), (42, 55), (8, 4)):
        probs[y : y + 2, x : x + 2] = 0.9  # specks of 4 pixels
    return probs[None], truth


def _store(tmp_path, folds=(0, 1)) -> ProbabilityStore:
    store = ProbabilityStore(tmp_path)
    for k in range(6):
        probs, truth = _image(k)
        store.save(IDENTITY, f"img{k}.png", probs, truth, folds[k % len(folds)])
    return store


def _search(store: ProbabilityStore) -> Search:
    return Search(
        store,
        Task("binary", 1),
        THRESHOLDS,
        0.0005,
        checkpoints={0: "f0/best.pt", 1: "f1/best.pt"},
    )


def test_search_finds_the_known_threshold_object_size_and_hole_filling(tmp_path):
    search = _search(_store(tmp_path))
    results = run_search(search, ["threshold", "min_object_size", "fill_holes"])
    recipe = search.recipe
    # Above the band (0.22) and below the object (0.3): 0.25 is the one perfect threshold.
    assert recipe.threshold == 0.25
    # The smallest size in the grid that drops the 4-pixel specks (bigger ones tie: simpler wins).
    assert min_sizes(search.store) == [0, 1, 2, 3, 6, 15, 31]
    assert recipe.min_object_size == 6
    assert recipe.fill_holes is True
    assert results[-1].dice == 1.0 and recipe.scores["fill_holes"] == 1.0
    assert [r.step for r in results] == ["default", "threshold", "min_object_size", "fill_holes"]
    assert all(r.gain > 0.0005 for r in results[1:])  # each step was kept for its gain
    save_recipe(recipe, tmp_path / "recipe.yaml")
    assert load_recipe(tmp_path / "recipe.yaml") == recipe


def test_a_step_that_gains_nothing_keeps_the_simpler_choice(tmp_path):
    search = _search(_store(tmp_path))
    search.recipe = Recipe(threshold=0.25, min_object_size=6, fill_holes=False)
    run_search(search, ["min_object_size", "threshold"])  # the specks are gone already
    assert search.recipe.min_object_size == 6 and search.recipe.threshold == 0.25


def test_ensemble_unless_one_fold_is_clearly_better(tmp_path):
    search = _search(_store(tmp_path))  # folds alike: the ensemble stays
    run_search(search, ["ensemble"])
    assert search.recipe.ensemble is True and search.recipe.member is None
    lopsided = ProbabilityStore(tmp_path / "lopsided")
    for k in range(6):
        probs, truth = _image(k)
        if k % 2:  # fold 1's model predicts nothing at all
            probs = np.zeros_like(probs)
        lopsided.save(IDENTITY, f"img{k}.png", probs, truth, k % 2)
    search = _search(lopsided)
    search.recipe = Recipe(threshold=0.25)
    run_search(search, ["ensemble"])
    assert search.recipe.ensemble is False and search.recipe.member == "f0/best.pt"
