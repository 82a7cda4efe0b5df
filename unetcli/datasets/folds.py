"""K grouped folds of the labelled pool, and the (train, validation) split a config asks for.

`dataset.folds=K dataset.fold=k` makes fold k the validation split and the other K-1 folds
the training split; `dataset.fold=all` trains on every labelled image with no validation
(the final model of a competition). `dataset.folds=null` keeps the random
`dataset.validation_size` split. Whole groups (Carvana: the 16 views of one car) stay in one
fold, so no object is trained on and then scored.

The assignment depends only on the sorted group names, their image counts and `seed`
(NumPy's seeded permutation, no hash of a string), so it is the same on every run and
every machine.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from omegaconf import DictConfig

from unetcli.datasets.base import Layout, Sample
from unetcli.errors import UnetError


def grouped_folds(samples: list[Sample], folds: int, seed: int) -> list[list[Sample]]:
    """The samples of each of `folds` folds, balanced by image count, whole groups each.

    Groups are visited in a seeded random order, larger groups first (a stable sort, so
    equal-sized groups keep the random order), each going to the fold with the fewest
    images so far: folds differ by at most one group's size.
    """
    sizes = Counter(s.group for s in samples)
    groups = sorted(sizes)
    if len(groups) < folds:
        raise UnetError(
            f"dataset.folds={folds} needs at least {folds} groups of images, but the labelled "
            f"pool has {len(groups)} (images of one group, e.g. the views of one car, share a "
            "fold); lower dataset.folds"
        )
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    order.sort(key=lambda g: -sizes[g])
    filled = [0] * folds
    fold_of: dict[str, int] = {}
    for group in order:
        k = filled.index(min(filled))
        fold_of[group] = k
        filled[k] += sizes[group]
    return [[s for s in samples if fold_of[s.group] == k] for k in range(folds)]


def fold_split(
    samples: list[Sample], folds: int, fold: int | str, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """(train, validation): fold `fold` of `folds` validates, or everything trains (fold=all)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise UnetError(
            f"dataset.folds must be a whole number of at least 2 (or null for the random "
            f"dataset.validation_size split), got {folds!r}"
        )
    if str(fold) == "all":
        return list(samples), []
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise UnetError(
            f"dataset.fold must be one of 0..{folds - 1} (the validation fold of "
            f"dataset.folds={folds}) or all (train on every image, no validation), got {fold!r}"
        )
    parts = grouped_folds(samples, folds, seed)
    train = [s for k, part in enumerate(parts) if k != fold for s in part]
    return train, parts[fold]


def dataset_split(
    layout: Layout, dataset: DictConfig, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """The (train, validation) split that `dataset.folds`/`dataset.fold` or
    `dataset.validation_size` asks for.

    Checkpoints written before folds existed have no `dataset.folds`: they were split by
    `validation_size`, and still are.
    """
    folds = dataset.get("folds")
    if folds is None:
        return layout.split(float(dataset.validation_size), seed)
    return fold_split(layout.fold_pool(), folds, dataset.fold, seed)
