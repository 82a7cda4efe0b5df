"""K grouped folds: a partition of the labelled pool, whole groups, fixed by the seed;
dataset.fold=all trains on everything and keeps last.pt alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_command, tiny_overrides
from unetcli.datasets.base import Sample
from unetcli.datasets.buildings import BuildingsLayout
from unetcli.datasets.folds import fold_split, grouped_folds
from unetcli.errors import UnetError


def _pool() -> list[Sample]:
    """40 groups of 1 to 6 images (like cars with different numbers of views)."""
    samples = []
    for g in range(40):
        for v in range(1 + g % 6):
            name = f"g{g:02d}_{v}.png"
            samples.append(Sample(Path(name), Path(name), f"g{g:02d}", name))
    return samples


def _names(folds: list[list[Sample]]) -> list[list[str]]:
    """Each fold's image names; within a fold images keep the order they were listed in."""
    return [sorted(s.name for s in fold) for fold in folds]


def test_folds_partition_the_pool_by_whole_groups_balanced_by_images():
    pool = _pool()
    folds = grouped_folds(pool, 5, seed=7)
    names = [n for fold in _names(folds) for n in fold]
    assert sorted(names) == sorted(s.name for s in pool)  # every image exactly once
    fold_of_group: dict[str, set[int]] = {}
    for k, fold in enumerate(folds):
        for s in fold:
            fold_of_group.setdefault(s.group, set()).add(k)
    assert all(len(ks) == 1 for ks in fold_of_group.values())  # no group straddles folds
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 6  # at most one group's size apart
    for k in range(5):  # fold k validates, the other folds train
        train, val = fold_split(pool, 5, k, seed=7)
        assert sorted(s.name for s in val) == _names(folds)[k]
        assert not {s.group for s in train} & {s.group for s in val}
        assert len(train) + len(val) == len(pool)


def test_the_seed_fixes_the_folds():  # whatever order the files were listed in
    pool = _pool()
    assert _names(grouped_folds(pool, 5, 7)) == _names(grouped_folds(list(reversed(pool)), 5, 7))
    assert _names(grouped_folds(pool, 5, 7)) != _names(grouped_folds(pool, 5, 8))


def test_fold_all_trains_on_everything_and_bad_folds_are_refused():
    pool = _pool()
    train, val = fold_split(pool, 5, "all", seed=7)
    assert len(train) == len(pool) and val == []
    with pytest.raises(UnetError, match="dataset.fold must be one of 0..4"):
        fold_split(pool, 5, 5, seed=7)
    with pytest.raises(UnetError, match="dataset.folds must be a whole number of at least 2"):
        fold_split(pool, 1, 0, seed=7)
    with pytest.raises(UnetError, match="needs at least 50 groups"):
        grouped_folds(pool, 50, seed=7)


def test_an_official_split_is_not_silently_replaced_by_folds(tmp_path):
    with pytest.raises(UnetError, match="official_split=false"):
        BuildingsLayout(tmp_path, official_split=True).fold_pool()


def test_fold_all_keeps_last_checkpoint_only_and_refuses_early_stopping(tmp_path):
    overrides = [
        *tiny_overrides(tmp_path, objects=6),
        "dataset.folds=3",
        "dataset.fold=all",
        "trainer.epochs=1",
    ]
    result = run_command("train", overrides, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "last.pt").is_file() and not (ckpts / "best.pt").exists()
    assert result["best_value"] is None
    with pytest.raises(UnetError, match="dataset.fold=all trains on every image"):
        run_command(
            "train", [*overrides, "trainer.early_stopping.patience=2"], tmp_path / "run2"
        )
