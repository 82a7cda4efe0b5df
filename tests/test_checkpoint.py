"""Checkpoints are written atomically and refused with a clear message when unusable."""

import pytest
import torch

from unetcli.checkpoints import load_checkpoint, save_checkpoint
from unetcli.errors import UnetError


class DiesWhenSaved:
    """Stands in for anything that fails while the file is being written (a kill, a full disk)."""

    def __reduce__(self):
        raise RuntimeError("died while writing")


def test_save_is_atomic_and_a_failed_save_keeps_the_last_good_file(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {}, "epoch": 1}, path)
    assert not path.with_name("last.pt.tmp").exists()
    # The weights are written first; the save dies half-way through the file.
    big = {"w": torch.zeros(10_000)}
    with pytest.raises(RuntimeError, match="died while writing"):
        save_checkpoint({"model": big, "config": {}, "epoch": 2, "bad": DiesWhenSaved()}, path)
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
