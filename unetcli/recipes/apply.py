"""`unet predict recipe=<recipe.yaml>`: the recipe's choices replace the matching predict.* keys.

The threshold, min_object_size, fill_holes and TTA were chosen on out-of-fold data; so was
whether the whole ensemble or one member alone predicts best. The run says what it applied.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from unetcli.errors import UnetError
from unetcli.inference.predictor import Source
from unetcli.recipes.recipe import Recipe, load_recipe


def apply_recipe(cfg: DictConfig, sources: list[Source]) -> tuple[list[Source], str | None]:
    """(the sources to predict with, the start line's description); no recipe: unchanged."""
    if not cfg.recipe:
        return sources, None
    path = Path(str(cfg.recipe))
    recipe = load_recipe(path)
    opts = cfg.predict
    opts.threshold = float(recipe.threshold)
    opts.threshold_from = None
    opts.min_object_size = int(recipe.min_object_size)
    opts.fill_holes = bool(recipe.fill_holes)
    opts.tta = list(recipe.tta)
    chosen = _chosen(recipe, path, sources)
    return chosen, f"recipe {path}: {describe(recipe, len(chosen))}"


def describe(recipe: Recipe, models: int) -> str:
    """One line of what the recipe sets, e.g. `threshold 0.45, TTA hflip, ensemble of 5`."""
    parts = [f"threshold {recipe.threshold:g}"]
    parts.append(f"TTA {'+'.join(recipe.tta)}" if recipe.tta else "no TTA")
    parts.append(f"objects >= {recipe.min_object_size} px" if recipe.min_object_size else
                 "no size filter")  # fmt: skip
    parts.append("holes filled" if recipe.fill_holes else "holes kept")
    if recipe.ensemble or not recipe.member:
        parts.append(f"ensemble of {models}" if models > 1 else "one model")
    else:
        parts.append(f"member {recipe.member} alone")
    return ", ".join(parts)


def _chosen(recipe: Recipe, path: Path, sources: list[Source]) -> list[Source]:
    """All sources, or the one member the recipe found better than the whole ensemble."""
    if recipe.ensemble or not recipe.member:
        return sources
    wanted = Path(str(recipe.member))
    for source in sources:
        if source.checkpoint.resolve() == wanted.resolve():
            return [source]
    given = ", ".join(str(s.checkpoint) for s in sources)
    missing = "" if wanted.is_file() else " (and that file does not exist)"
    raise UnetError(
        f"recipe file {path} chose member {wanted} alone (ensemble: false){missing}, but it "
        f"is not among the models given: {given}. Pass the ensemble= (or checkpoint=) the "
        "recipe was searched on, or set ensemble: true in the recipe to average them all."
    )
