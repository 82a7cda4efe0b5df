"""cuDNN autotuning only where input shapes repeat: off while whole images of mixed sizes are
validated or predicted (`dataset.image_size: null`, `predict.mode=full`).

The flag is plain Python state, settable on a CPU build: each test sets it as a CUDA run's
`Runtime.apply()` does and reads it back where the model computes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import compose, run_command, tiny_overrides
from unetcli.datasets.base import Sample
from unetcli.datasets.layouts import build_layout
from unetcli.datasets.sizes import mixed_sizes
from unetcli.inference import predictor as predictor_module
from unetcli.training import validation

WHOLE = ["dataset.image_size=null", "dataset.crop_size=[32,48]", "dataset.validation_batch_size=1"]


def _shrink(image: Path, mask: Path) -> None:
    """The pair cropped to 32x48 (from 48x64): a second size in the set."""
    cv2.imwrite(str(image), cv2.imread(str(image))[:32, :48])
    gif = Image.open(mask)
    palette = gif.getpalette()
    small = Image.fromarray(np.asarray(gif)[:32, :48].copy(), mode="P")
    small.putpalette(palette)
    small.save(mask)


def _overrides(root: Path) -> list[str]:
    return [*tiny_overrides(root, objects=6), "model.widths=[4,8]", *WHOLE]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A synthetic set whose every other image (training and test) is smaller."""
    root = tmp_path_factory.mktemp("mixed")
    layout = build_layout(compose("train", [*_overrides(root), "paths.run_dir=."]).dataset)
    layout.prepare()
    for split in ("train", "test"):
        for image in sorted((layout.root / split).glob("*.jpg"))[::2]:
            _shrink(image, layout.root / f"{split}_masks" / f"{image.stem}_mask.gif")
    return root


def _recording(monkeypatch, module: object, name: str) -> list[bool]:
    """`module.name` wrapped to record cuDNN autotuning at each call; autotuning on, as a CUDA
    run's `Runtime.apply()` leaves it."""
    seen: list[bool] = []
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        seen.append(torch.backends.cudnn.benchmark)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    return seen


def _train(root: Path, out: Path) -> Path:
    steps = ["trainer.epochs=1", "trainer.max_steps_per_epoch=2", "trainer.batch_size=2"]
    run_command("train", [*_overrides(root), *steps], out)
    return out / "checkpoints" / "last.pt"


def test_whole_image_validation_of_mixed_sizes_autotunes_nothing(mixed, tmp_path, monkeypatch):
    seen = _recording(monkeypatch, validation, "_score_batch")
    _train(mixed, tmp_path / "run")
    assert seen and not any(seen)
    assert torch.backends.cudnn.benchmark  # restored after validation


def test_validation_of_one_size_keeps_autotuning(tmp_path, monkeypatch):
    seen = _recording(monkeypatch, validation, "_score_batch")
    _train(tmp_path, tmp_path / "run")
    assert seen and all(seen)


@pytest.mark.parametrize("mode, autotuned", [("full", False), ("sliding", True)])
def test_predicting_whole_images_of_mixed_sizes_autotunes_nothing(
    mixed, tmp_path, monkeypatch, mode, autotuned
):
    checkpoint = _train(mixed, tmp_path / "run")
    seen = _recording(monkeypatch, predictor_module.Predictor, "__call__")
    args = ["predict.progress=false", "hardware.tune=false", "hardware.num_workers=0"]
    out = tmp_path / "predict"
    run_command(
        "predict",
        [f"checkpoint={checkpoint}", f"predict.mode={mode}", f"predict.output_dir={out}", *args],
        out,
    )
    assert seen and all(flag == autotuned for flag in seen)
    assert torch.backends.cudnn.benchmark


def test_mixed_sizes_reads_the_headers(tmp_path):
    def sample(name: str, height: int) -> Sample:
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.zeros((height, 8, 3), np.uint8))
        return Sample(path, None, name, name)

    same = [sample("a", 8), sample("b", 8)]
    assert not mixed_sizes(same)
    assert mixed_sizes([*same, sample("c", 9)])
    assert mixed_sizes([*same, Sample(tmp_path / "missing.png", None, "m", "m")])
    assert not mixed_sizes(same[:1])
