"""The inference recipe, chosen greedily on out-of-fold probabilities.

The search is a list of steps (`evaluate.search_steps`), each a function below: it tries its
candidates with the choices of the steps before it, and keeps the best one only if it
raises the mean out-of-fold Dice by more than `tolerance` over the current choice; among
equal scores the simpler (cheaper) candidate wins. Every score comes from the saved
out-of-fold probabilities (see probabilities.py): each image predicted by the one fold model
that never trained on it. No test image is ever read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.evaluation.probabilities import IDENTITY, ProbabilityStore
from unetcli.evaluation.report import Scorer
from unetcli.evaluation.thresholds import dice_iou
from unetcli.inference.tta import TTA_NAMES
from unetcli.recipes.recipe import Recipe

#: Fractions of the median image area tried as min_object_size (0: keep every object).
MIN_SIZE_FRACTIONS = (0.0, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01)


@dataclass
class StepResult:
    step: str
    choice: str
    dice: float
    gain: float


@dataclass
class Search:
    """The state of a search: what is chosen so far and how to score a candidate."""

    store: ProbabilityStore
    task: Task
    thresholds: list[float]
    tolerance: float
    # Seconds per image of one forward pass of one member, and the budget per image.
    pass_seconds: float = 0.0
    budget: float | None = None
    checkpoints: dict[int, str] = field(default_factory=dict)
    threads: int = 1
    recipe: Recipe = field(default_factory=Recipe)

    @cached_property
    def names(self) -> list[str]:
        """The out-of-fold images (listed once: every candidate of every step scores them)."""
        return self.store.names()

    @cached_property
    def folds(self) -> np.ndarray:
        """The fold whose model predicted each image of `names`."""
        return np.array([self.store.truth_and_fold(n)[1] for n in self.names])

    def per_image(self, recipe: Recipe, thresholds: Sequence[float]) -> np.ndarray:
        """(images, thresholds) Dice of each out-of-fold image under `recipe`."""
        scorer = Scorer(self.task, list(thresholds), recipe.min_object_size, recipe.fill_holes)
        views = [IDENTITY, *recipe.tta]

        def one(name: str) -> np.ndarray:
            truth, _ = self.store.truth_and_fold(name)
            probs = sum(self.store.probs(v, name) for v in views) / len(views)
            counts = scorer.threshold_counts(probs, truth)
            return np.mean([dice_iou(plane)[0] for plane in counts], axis=0)

        with ThreadPoolExecutor(self.threads) as pool:
            return np.stack(list(pool.map(one, self.names)))

    def dice(self, recipe: Recipe) -> float:
        return float(self.per_image(recipe, [recipe.threshold]).mean())


def _decide(search: Search, step: str, tried: list[tuple[Recipe, float]]) -> StepResult:
    """Keep the best candidate if it beats the current choice (tried[0]) by the tolerance;
    candidates are listed simplest first, so among equal scores the simplest wins."""
    current, base = tried[0]
    top = max(dice for _, dice in tried)
    best, dice = next((r, d) for r, d in tried if d >= top - 1e-12)
    if dice - base <= search.tolerance:
        best, dice = current, base
    search.recipe = best
    return StepResult(step, "", dice, dice - base)


def step_threshold(search: Search) -> StepResult:
    """Every threshold of evaluate.thresholds at once (one pass over the images)."""
    now = search.recipe.threshold
    candidates = sorted({*search.thresholds, now}, key=lambda t: (abs(t - now), t))
    means = search.per_image(search.recipe, candidates).mean(axis=0)
    tried = [(replace(search.recipe, threshold=t), float(d)) for t, d in zip(candidates, means)]
    result = _decide(search, "threshold", tried)
    result.choice = f"{search.recipe.threshold:g}"
    return result


def min_sizes(store: ProbabilityStore) -> list[int]:
    """The min_object_size grid in pixels: MIN_SIZE_FRACTIONS of the median image area."""
    names = store.names()  # once per search
    areas = [store.truth_and_fold(n)[0].shape[-2:] for n in names[:: max(1, len(names) // 20)]]
    area = float(np.median([h * w for h, w in areas]))
    return sorted({int(round(f * area)) for f in MIN_SIZE_FRACTIONS})


def step_min_object_size(search: Search) -> StepResult:
    tried = [(search.recipe, search.dice(search.recipe))]
    for size in min_sizes(search.store):
        if size != search.recipe.min_object_size:
            candidate = replace(search.recipe, min_object_size=size)
            tried.append((candidate, search.dice(candidate)))
    tried[1:] = sorted(tried[1:], key=lambda rd: rd[0].min_object_size)
    result = _decide(search, "min_object_size", tried)
    result.choice = f"{search.recipe.min_object_size} px"
    return result


def step_fill_holes(search: Search) -> StepResult:
    tried = [(search.recipe, search.dice(search.recipe))]
    other = replace(search.recipe, fill_holes=not search.recipe.fill_holes)
    tried.append((other, search.dice(other)))
    result = _decide(search, "fill_holes", tried)
    result.choice = "on" if search.recipe.fill_holes else "off"
    return result


def predicted_seconds(search: Search, views: int) -> float:
    """Seconds per test image of the ensemble with `views` TTA views besides the identity."""
    return len(search.checkpoints) * (1 + views) * search.pass_seconds


def tta_views(search: Search, steps: Sequence[str]) -> list[str]:
    """The views the tta step may try: all of them if the budget allows one, else none."""
    if "tta" not in steps:
        return []
    fits = search.budget is None or predicted_seconds(search, 1) <= search.budget
    return list(TTA_NAMES) if fits else []


def step_tta(search: Search) -> StepResult:
    """Add views one at a time (the one that gains most), while they gain and fit the budget.

    Each view's probabilities were predicted once beforehand (a forward pass of every fold
    model over its out-of-fold images, see `tta_views`) and are reused by every candidate
    set that holds the view.
    """
    start, results = search.recipe, []
    while True:
        chosen = search.recipe.tta
        fits = search.budget is None or predicted_seconds(search, len(chosen) + 1) <= search.budget
        left = [v for v in TTA_NAMES if v not in chosen] if fits else []
        if not left:
            break
        tried = [(search.recipe, search.dice(search.recipe))]
        for view in left:
            candidate = replace(search.recipe, tta=[*chosen, view])
            tried.append((candidate, search.dice(candidate)))
        results.append(_decide(search, "tta", tried))
        if search.recipe.tta == chosen:
            break
    base = results[0].dice - results[0].gain if results else search.dice(start)
    dice = results[-1].dice if results else base
    views = "+".join(search.recipe.tta) or "none"
    cost = predicted_seconds(search, len(search.recipe.tta))
    return StepResult("tta", f"{views} ({cost:.3g} s/image)", dice, dice - base)


def step_ensemble(search: Search) -> StepResult:
    """The fold ensemble, unless the best single fold is clearly better.

    On out-of-fold images only one model (the fold that held the image out) is unseen, so an
    average of all folds cannot be scored there without leakage. The honest comparison:
    the out-of-fold Dice (the mean over every fold model on the images it never saw) is what
    one fold model gives on unseen data, and so a floor for their average; the best single
    fold is the one with the highest Dice on its own validation fold. That fold is chosen
    only if its Dice beats the out-of-fold Dice by more than the tolerance plus two standard
    errors of its own fold's mean: folds differ mostly in how hard their images are, and
    picking the highest of K noisy fold scores would otherwise pick an easy fold.
    """
    dice = search.per_image(search.recipe, [search.recipe.threshold])[:, 0]
    folds = search.folds
    oof = float(dice.mean())
    means = {fold: float(dice[folds == fold].mean()) for fold in sorted(set(folds.tolist()))}
    best_fold = max(means, key=means.__getitem__)  # the first of equal folds
    best = means[best_fold]
    mine = dice[folds == best_fold]
    error = float(mine.std(ddof=1) / math.sqrt(len(mine))) if len(mine) > 1 else 0.0
    single = best - oof > search.tolerance + 2 * error
    search.recipe = replace(
        search.recipe,
        ensemble=not single,
        member=search.checkpoints.get(best_fold) if single else None,
    )
    if single:
        return StepResult("ensemble", f"fold {best_fold} alone", best, best - oof)
    choice = f"all {len(search.checkpoints)} folds (best fold {best_fold}: {best:.4f})"
    return StepResult("ensemble", choice, oof, 0.0)


STEPS: dict[str, Callable[[Search], StepResult]] = {
    "tta": step_tta,
    "threshold": step_threshold,
    "min_object_size": step_min_object_size,
    "fill_holes": step_fill_holes,
    "ensemble": step_ensemble,
}


def run_search(search: Search, steps: Sequence[str]) -> list[StepResult]:
    """Run `steps` in order; the recipe they chose is `search.recipe`, scores filled in."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise UnetError(
            f"evaluate.search_steps holds unknown steps {unknown}; choose from {list(STEPS)}"
        )
    if search.task.kind == "multiclass":
        raise UnetError(
            "evaluate.search chooses a threshold, which binary and multilabel models have; a "
            "multiclass model takes the argmax. Evaluate it without evaluate.search."
        )
    baseline = search.dice(search.recipe)
    results = [StepResult("default", _describe(search.recipe), baseline, 0.0)]
    for name in steps:
        result = STEPS[name](search)
        search.recipe.scores[name] = round(result.dice, 6)
        results.append(result)
    search.recipe.scores = {"default": round(baseline, 6), **search.recipe.scores}
    return results


def _describe(recipe: Recipe) -> str:
    tta = "+".join(recipe.tta) or "no TTA"
    return f"threshold {recipe.threshold:g}, min size {recipe.min_object_size}, {tta}"


def search_table(results: list[StepResult]) -> str:
    """The one-screen table: step, choice, out-of-fold Dice after it, gain."""
    lines = [f"{'step':<16} {'choice':<44} {'OOF Dice':>9} {'gain':>8}"]
    for r in results:
        lines.append(f"{r.step:<16} {r.choice[:44]:<44} {r.dice:>9.4f} {r.gain:>+8.4f}")
    return "\n".join(lines)
