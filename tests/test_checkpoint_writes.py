"""best.pt and last.pt come from one serialisation, and a later last.pt leaves best.pt alone."""

from __future__ import annotations

import torch

from unetcli.core.checkpoints import load_checkpoint, save_checkpoint


def state(epoch: int) -> dict:
    return {"model": {"w": torch.full((4,), float(epoch))}, "config": {}, "epoch": epoch}


def test_best_is_the_same_file_and_survives_the_next_last(tmp_path):
    last, best = tmp_path / "ckpt" / "last.pt", tmp_path / "ckpt" / "best.pt"
    save_checkpoint(state(1), last, best)
    assert last.read_bytes() == best.read_bytes()
    save_checkpoint(state(2), last)  # not a new best
    assert load_checkpoint(best)["epoch"] == 1
    assert torch.equal(load_checkpoint(last)["model"]["w"], torch.full((4,), 2.0))
    save_checkpoint(state(3), last, best)
    assert load_checkpoint(best)["epoch"] == 3 == load_checkpoint(last)["epoch"]
    assert not list(tmp_path.glob("ckpt/*.tmp"))
