import pickle

import pytest
import torch

from unetcli.checkpoints import load_checkpoint, save_checkpoint
from unetcli.errors import UnetError


def test_save_is_atomic_and_a_failed_save_keeps_the_last_good_file(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {}, "epoch": 1}, path)
    assert not path.with_name("last.pt.tmp").exists()
    # A lambda cannot be pickled: the save dies half-way through writing.
    with pytest.raises((AttributeError, pickle.PicklingError)):
        save_checkpoint({"model": {}, "config": {}, "epoch": 2, "bad": lambda: 0}, path)
    assert load_checkpoint(path)["epoch"] == 1


def test_load_names_the_missing_or_foreign_file(tmp_path):
    with pytest.raises(UnetError, match="nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UnetError, match="not a unetcli checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a zip")
    with pytest.raises(UnetError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "broken.pt")
