"""Which checkpoints make an ensemble: folds from their own configs, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from unetcli.core.checkpoints import checkpoint_config, save_checkpoint
from unetcli.errors import UnetError
from unetcli.inference.ensemble import Member, out_of_fold_members, resolve_members


def member(fold, folds=3, name="synthetic", classes=1) -> Member:
    config = OmegaConf.create(
        {"dataset": {"name": name, "num_classes": classes, "task": "auto", "fold": fold,
                     "folds": folds}}
    )  # fmt: skip
    return Member(Path(f"f{fold}/best.pt"), fold if fold != "all" else None, folds, config)


def test_every_fold_once_is_out_of_fold():
    members = [member(0), member(1), member(2), member("all")]
    assert [m.fold for m in out_of_fold_members(members)] == [0, 1, 2]


@pytest.mark.parametrize(
    "members",
    [[member(0), member(2)], [member(0), member(1), member(1)], [member(0, 2), member(1, 3)]],
)
def test_a_missing_doubled_or_mixed_fold_is_refused(members):
    with pytest.raises(UnetError, match="exactly one checkpoint for each fold"):
        out_of_fold_members(members)


def test_no_fold_at_all_is_refused():
    with pytest.raises(UnetError, match="none of the ensemble's checkpoints was trained on a fold"):
        out_of_fold_members([member("all")])


def checkpoint(path: Path, fold, name="synthetic") -> Path:
    path.parent.mkdir(parents=True)
    config = {"dataset": {"name": name, "num_classes": 1, "task": "auto", "folds": 2, "fold": fold}}
    save_checkpoint({"model": {}, "config": config}, path)
    return path


def test_a_sweep_folder_gives_its_runs_in_fold_order_and_reads_only_configs(tmp_path):
    checkpoint(tmp_path / "sweep" / "fold1" / "checkpoints" / "best.pt", 1)
    checkpoint(tmp_path / "sweep" / "fold0" / "checkpoints" / "best.pt", 0)
    checkpoint(tmp_path / "sweep" / "all" / "checkpoints" / "last.pt", "all")
    members = resolve_members(str(tmp_path / "sweep"))
    assert [(m.fold, m.checkpoint.parent.parent.name) for m in members] == [
        (0, "fold0"), (1, "fold1"), (None, "all")
    ]  # fmt: skip
    assert checkpoint_config(members[0].checkpoint)["dataset"]["fold"] == 0


def test_models_of_different_datasets_are_refused(tmp_path):
    a = checkpoint(tmp_path / "a" / "best.pt", 0)
    b = checkpoint(tmp_path / "b" / "best.pt", 1, name="carvana")
    with pytest.raises(UnetError, match="dataset.name is 'synthetic' in .* but 'carvana'"):
        resolve_members([str(a), str(b)])


def test_an_empty_sweep_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnetError, match="holds no checkpoints/best.pt"):
        resolve_members(str(tmp_path / "empty"))
