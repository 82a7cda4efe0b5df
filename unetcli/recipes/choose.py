"""`evaluate.search=true`: predict the TTA views, run the search steps, write recipe.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

from omegaconf import DictConfig

from unetcli.core.console import print_summary
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.evaluation.out_of_fold import OutOfFold
from unetcli.evaluation.probabilities import ProbabilityStore
from unetcli.evaluation.thresholds import check_thresholds
from unetcli.inference.options import resolve_threads
from unetcli.recipes.recipe import Recipe, save_recipe
from unetcli.recipes.steps import Search, run_search, search_table, step_ensemble, tta_views

RECIPE_FILE = "recipe.yaml"


def _note() -> str:
    """recipe.yaml's comment on the ensemble choice (the step's docstring, unwrapped)."""
    text = " ".join((step_ensemble.__doc__ or "").split())
    return "\n".join(["ensemble:", *textwrap.wrap(text, 84)])


def prepare_search(
    cfg: DictConfig, oof: OutOfFold, store: ProbabilityStore, task: Task, pass_seconds: float
) -> Search:
    """The search over the saved out-of-fold probabilities; every process predicts its share
    of each TTA view the search may try (once each, saved next to the plain ones)."""
    ev = cfg.evaluate
    if ev.tta:
        raise UnetError(
            f"evaluate.search chooses the TTA views itself, starting from none, but "
            f"evaluate.tta={list(ev.tta)}; drop evaluate.tta (or set evaluate.tta=[])"
        )
    budget = None if ev.search_budget is None else float(ev.search_budget)
    search = Search(
        store,
        task,
        check_thresholds(ev.thresholds, "evaluate.thresholds"),
        float(ev.search_tolerance),
        pass_seconds=oof.processes.from_main(pass_seconds),
        budget=budget,
        checkpoints={int(m.fold): str(m.checkpoint) for m in oof.members},
        threads=resolve_threads(ev.threads, "evaluate.threads"),
        recipe=Recipe(float(ev.threshold), int(ev.min_object_size), bool(ev.fill_holes)),
    )
    views = tta_views(search, list(ev.search_steps))
    timed = [oof.score(None, store, view) for view in views]
    if timed:  # one view pass (predict, little scoring) is the better figure for a pass
        search.pass_seconds = oof.processes.from_main(sum(timed) / len(timed))
    return search


def choose_recipe(cfg: DictConfig, search: Search, run_dir: Path) -> dict:
    """Run the steps (main process), write recipe.yaml, print the table; the results."""
    results = run_search(search, list(cfg.evaluate.search_steps))
    path = run_dir / RECIPE_FILE
    save_recipe(search.recipe, path, _note())
    print(f"\nthe recipe search on {len(search.store.names())} out-of-fold images:")
    print(search_table(results))
    recipe = search.recipe
    print_summary(
        "unet evaluate: recipe chosen",
        [
            ("recipe", str(path)),
            ("out-of-fold Dice", f"{results[0].dice:.4f} -> {results[-1].dice:.4f}"),
            ("ensemble", "all folds" if recipe.ensemble else f"one fold: {recipe.member}"),
            ("forward pass", f"{search.pass_seconds:.4g} s/image for one model, timed here"),
            ("apply it", f"unet predict ensemble={cfg.ensemble} recipe={path}"),
        ],
    )
    return {
        "recipe": str(path),
        "steps": [r.__dict__ for r in results],
        "pass_seconds": search.pass_seconds,
    }
