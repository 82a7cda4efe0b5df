"""A file that passes the pre-training check and goes bad before its first read:
dataset.on_bad_file=stop stops at once naming it, skip leaves it out and lists it.

The real trainer is set up (which runs the check), then a training image is overwritten with
garbage, then the run starts; its loader meets the file for the first time.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import compose, tiny_overrides
from unetcli.config.schema import check_config
from unetcli.errors import UnetError
from unetcli.training.trainer import Trainer


def trainer_then_corrupt(tmp_path, policy: str) -> tuple[Trainer, str]:
    # Without the data cache: a cached file is read once, before the run, and never again.
    cfg = compose("train", [
        *tiny_overrides(tmp_path, objects=6), "model.widths=[4,8]", "trainer.epochs=1",
        "trainer.batch_size=2", f"dataset.on_bad_file={policy}", "dataset.cache=off",
    ])  # fmt: skip
    cfg.paths.run_dir = str(tmp_path / "run")
    trainer = Trainer(cfg)  # the pre-training check reads every file: all good here
    bad = trainer.data.train_samples[1].image
    bad.write_bytes(b"went bad after the check")
    return trainer, str(bad)


def test_stop_names_the_file_at_once(tmp_path):
    trainer, bad = trainer_then_corrupt(tmp_path, "stop")
    with pytest.raises(UnetError) as err:
        trainer.fit()
    message = str(err.value)
    assert message.startswith(f"{bad} could not be read during training")
    assert "dataset.on_bad_file=skip" in message and "\n" not in message


def test_skip_leaves_it_out_and_lists_it(tmp_path, capsys):
    trainer, bad = trainer_then_corrupt(tmp_path, "skip")
    result = trainer.fit()
    assert result["skipped_files"] == [bad] and result["epochs"] == 1
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["skipped_files"] == [bad]
    out = capsys.readouterr().out
    assert f"skipped unreadable file {bad}" in out
    assert "skipped files" in out  # in the summary


def test_other_policies_are_refused_up_front():
    with pytest.raises(UnetError, match="dataset.on_bad_file='ignore' .* stop, skip"):
        check_config(compose("train", ["paths.run_dir=run", "dataset.on_bad_file=ignore"]))
