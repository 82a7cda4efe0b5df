"""A checkpoint or weight file that would run code when unpickled is refused, and runs nothing.

The crafted file is a real torch checkpoint (model weights and config present) with one extra
object whose unpickling writes a marker file, as a malicious file would run a shell command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import run_command
from unetcli.core.checkpoints import load_checkpoint
from unetcli.errors import UnetError


class WritesAFile:
    """Unpickling this calls `exec`, which writes `marker`: what `weights_only=False` allows."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def crafted(tmp_path: Path, name: str = "evil.pt") -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / name
    state = {"model": {"w": torch.ones(1)}, "config": {}, "epoch": 1, "x": WritesAFile(marker)}
    torch.save(state, path)
    assert not marker.exists()
    return path, marker


def test_the_crafted_file_would_run_code_if_loaded_unsafely(tmp_path):
    path, marker = crafted(tmp_path)
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.read_text() == "pwned"


def test_load_checkpoint_refuses_it_names_it_and_runs_nothing(tmp_path):
    path, marker = crafted(tmp_path)
    with pytest.raises(UnetError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert f"refusing to load checkpoint {path}" in message
    assert "\n" not in message
    assert not marker.exists()


TINY = [
    "dataset.layout.num_objects=4",
    "dataset.layout.height=32",
    "dataset.layout.width=32",
    "dataset.image_size=[32,32]",
    "model.widths=[4,8]",
    "hardware.num_workers=0",
    "trainer.progress=false",
]
SMALL = [o for o in TINY if not o.startswith("model.")]


@pytest.mark.parametrize(
    "command, key, extra",
    [
        ("predict", "checkpoint", []),
        ("evaluate", "checkpoint", []),
        ("train", "trainer.resume", TINY),
        ("train", "model.encoder_weights", ["model=unet_resnet", "model.encoder=resnet18", *SMALL]),
    ],
)
def test_every_command_key_refuses_it(tmp_path, command, key, extra):
    path, marker = crafted(tmp_path)
    overrides = [
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.output_root={tmp_path / 'out'}",
        f"{key}={path}",
        *extra,
    ]
    with pytest.raises(UnetError, match="refusing to load .*evil.pt"):
        run_command(command, overrides, tmp_path / "run")
    assert not marker.exists()
