"""Checkpoints are written atomically and refused with a clear message when unusable."""

import pytest
import torch
from hydra.utils import instantiate

from unetcli.augmentation.transforms import RandomRotate90KeepShape
from unetcli.core.checkpoints import (
    MOVED_TARGETS,
    checkpoint_config,
    load_checkpoint,
    save_checkpoint,
)
from unetcli.errors import UnetError


class NotPlainData:
    """Anything a weights-only load could not read back (a class instance, a DictConfig)."""


def test_save_is_atomic_and_refuses_what_a_weights_only_load_could_not_read(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {}, "epoch": 1}, path)
    assert not path.with_name("last.pt.tmp").exists()
    with pytest.raises(TypeError, match=r"state\['bad'\] is a NotPlainData"):
        save_checkpoint({"model": {}, "config": {}, "epoch": 2, "bad": NotPlainData()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert not path.with_name("last.pt.tmp").exists()


def test_load_names_the_missing_or_foreign_file(tmp_path):
    with pytest.raises(UnetError, match="nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UnetError, match="not a unetcli checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a zip")
    with pytest.raises(UnetError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "broken.pt")


def test_a_checkpoint_naming_a_moved_class_still_builds_it(tmp_path):
    """Checkpoints record the `_target_`s their config builds; one written before a class
    moved (the quarter-turn transform left unetcli.transforms) still restores."""
    old = "unetcli.transforms.RandomRotate90KeepShape"
    config = {"augmentation": {"val": [], "train": [{"_target_": old, "p": 0.5}]}}
    save_checkpoint({"model": {}, "config": config}, tmp_path / "old.pt")
    for loaded in (load_checkpoint(tmp_path / "old.pt")["config"],
                   checkpoint_config(tmp_path / "old.pt")):  # fmt: skip
        step = loaded["augmentation"]["train"][0]
        assert step == {"_target_": MOVED_TARGETS[old], "p": 0.5}
        assert isinstance(instantiate(step), RandomRotate90KeepShape)
