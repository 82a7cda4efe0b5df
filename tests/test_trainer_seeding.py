"""A run depends on its seed only, not on how its runtime was chosen."""

from __future__ import annotations

import torch

from tests.helpers import compose, tiny_overrides
from unetcli.training.trainer import Trainer


def test_the_run_does_not_depend_on_how_the_runtime_was_chosen(tmp_path):
    """Measuring draws random numbers before the trainer starts, a cache hit does not: same
    seed, same weights and data."""

    def build(run: str, measured: bool) -> Trainer:
        cfg = compose("train", [*tiny_overrides(tmp_path, objects=6), "model.widths=[4,8]"])
        cfg.paths.run_dir = str(tmp_path / run)
        if measured:  # what the tuner's candidate steps do
            torch.manual_seed(0)
            torch.rand(1000)
        return Trainer(cfg)

    plain, tuned = build("plain", False), build("tuned", True)
    for (name, a), b in zip(plain.model.state_dict().items(), tuned.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert next(iter(plain.data.train_loader))["image"].equal(
        next(iter(tuned.data.train_loader))["image"]
    )
