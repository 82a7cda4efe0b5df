"""The inference recipe: what `unet evaluate evaluate.search=true` chose on out-of-fold data.

`recipe.yaml` is plain YAML the user can read and edit: every choice with the out-of-fold Dice
it gave. `unet predict recipe=<file>` applies it; it never contains code or a path that runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from unetcli.core.files import atomic_write_text
from unetcli.errors import UnetError
from unetcli.inference.tta import TTA_NAMES


@dataclass
class Recipe:
    """The choices; `scores` maps each step's name to the out-of-fold Dice after it."""

    threshold: float = 0.5
    min_object_size: int = 0
    fill_holes: bool = False
    tta: list[str] = field(default_factory=list)
    # True: average every member; False: use `member` alone (the best single fold).
    ensemble: bool = True
    member: str | None = None
    scores: dict[str, float] = field(default_factory=dict)


def save_recipe(recipe: Recipe, path: Path, note: str = "") -> None:
    """Write `recipe.yaml` atomically, keys in the order a reader follows the search.

    `note` (lines of text) is added to the header comment, e.g. how a choice was made.
    """
    text = "# unet predict recipe=<this file> applies these choices; each score is the\n"
    text += "# out-of-fold Dice measured with the choices above it.\n"
    text += "".join(f"# {line}\n" for line in note.splitlines())
    text += yaml.safe_dump(asdict(recipe), sort_keys=False)
    atomic_write_text(path, text, what="recipe")


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe, naming the file and key of anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise UnetError(
            f"recipe={path} does not exist; it is the recipe.yaml that `unet evaluate "
            "ensemble=... evaluate.search=true` writes into its run folder."
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UnetError(f"recipe file {path} is not valid YAML: {err}") from err
    known = set(Recipe.__dataclass_fields__)
    if not isinstance(data, dict):
        raise UnetError(f"recipe file {path} is not a mapping of keys {sorted(known)}.")
    unknown = sorted(set(data) - known)
    if unknown:
        raise UnetError(
            f"recipe file {path} has keys this version does not know: {unknown}; the keys "
            f"are {sorted(known)}."
        )
    _check_kinds(data, path)
    recipe = Recipe(**data)
    bad = [t for t in recipe.tta if t not in TTA_NAMES]
    if bad:
        raise UnetError(
            f"recipe file {path}: tta names {bad} are unknown; use any of {list(TTA_NAMES)}"
        )
    if not 0.0 < float(recipe.threshold) < 1.0:
        raise UnetError(f"recipe file {path}: threshold must lie in (0, 1), got {recipe.threshold}")
    return recipe


# What each key holds (a YAML `1` is an int, accepted where a float is expected).
_KINDS = {
    "threshold": ((int, float), "a number in (0, 1)"),
    "min_object_size": ((int,), "a whole number of pixels, 0 or more"),
    "fill_holes": ((bool,), "true or false"),
    "tta": ((list,), f"a list of TTA names from {list(TTA_NAMES)}"),
    "ensemble": ((bool,), "true or false"),
    "member": ((str, type(None)), "a checkpoint path or null"),
    "scores": ((dict,), "a mapping of step names to out-of-fold Dice"),
}


def _check_kinds(data: dict, path: Path) -> None:
    """Refuse a value of the wrong kind with the file and key, before anything uses it."""
    for key, value in data.items():
        if key not in _KINDS:  # a key added later without a stated kind: Recipe takes it as is
            continue
        kinds, what = _KINDS[key]
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if not isinstance(value, kinds) or wrong_bool:
            raise UnetError(
                f"recipe file {path}: {key} must be {what}, got {value!r}. Fix that line or "
                "write the recipe again with `unet evaluate ensemble=... evaluate.search=true`."
            )
    if data.get("min_object_size", 0) < 0:
        raise UnetError(f"recipe file {path}: min_object_size must be 0 or more pixels")
