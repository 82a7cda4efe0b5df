"""A run depends on its seed only, not on how its runtime was chosen."""

from __future__ import annotations

import torch

from tests.helpers import compose, tiny_overrides
from unetcli.training.trainer import Trainer


def test_the_run_does_not_depend_on_how_the_runtime_was_chosen(tmp_path, monkeypatch):
    """Measuring draws random numbers, a cache hit does not: same seed, same weights and data."""
    import unetcli.training.trainer as trainer_module

    def build(run: str) -> Trainer:
        cfg = compose("train", [*tiny_overrides(tmp_path, objects=6), "model.widths=[4,8]"])
        cfg.paths.run_dir = str(tmp_path / run)
        return Trainer(cfg)

    plain = build("plain")
    chosen = trainer_module.training_runtime

    def measuring(cfg, processes=1):
        torch.manual_seed(0)  # what the tuner's candidate steps do
        torch.rand(1000)
        return chosen(cfg, processes)

    monkeypatch.setattr(trainer_module, "training_runtime", measuring)
    tuned = build("tuned")
    for (name, a), b in zip(plain.model.state_dict().items(), tuned.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert next(iter(plain.data.train_loader))["image"].equal(
        next(iter(tuned.data.train_loader))["image"]
    )
