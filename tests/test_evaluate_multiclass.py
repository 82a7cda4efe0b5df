"""Multi-class predict and evaluate through the commands, in-process, on a 3-class toy set.

The layout and the model are small classes here, built by `_target_` from the
checkpoint's config as any dataset or model is: pixels are coloured by class
(plus noise that makes some of them ambiguous) and the model is a fixed 1x1
convolution that reads the class from the colour.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from unetcli.commands import evaluate, predict
from unetcli.config.location import config_dir
from unetcli.core.checkpoints import save_checkpoint
from unetcli.datasets.base import Layout, Sample
from unetcli.models import SegmentationModel
from unetcli.submission.rle import rle_decode

COLOURS = np.array([[40, 40, 40], [200, 60, 60], [60, 200, 60]], np.float32)


class ColourLayout(Layout):
    """images/<name>.png with masks/<name>.png holding class indices 0..2."""

    def _samples(self) -> list[Sample]:
        return [
            Sample(p, self.root / "masks" / p.name, p.stem, p.name)
            for p in sorted((self.root / "images").glob("*.png"))
        ]

    def labelled_samples(self) -> list[Sample]:
        return self._samples()

    def held_out_samples(self) -> list[Sample]:
        return self._samples()

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.uint8)

    def mask_value_problem(self, raw: np.ndarray) -> str | None:
        """Class indices 0..2 are this dataset's values (for the dataset checks)."""
        return None if raw.max() <= 2 else f"values up to {raw.max()} (expected 0..2)"


class ColourClassifier(SegmentationModel):
    """Class logits = -(distance to each class colour)^2, as one 1x1 convolution."""

    def __init__(self) -> None:
        super().__init__(in_channels=3, num_classes=3)
        self.conv = nn.Conv2d(3, 3, 1)
        centres = (torch.from_numpy(COLOURS) / 255 - 0.5) / 0.25  # normalised colours
        with torch.no_grad():
            self.conv.weight.copy_(2 * centres[:, :, None, None])
            self.conv.bias.copy_(-(centres**2).sum(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def make_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(5):
        h, w = 30 + 4 * i, 44 - 2 * i  # sizes differ: no batching across images
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2, w // 3 :] = 1
        mask[h // 2 :, w // 2 :] = 2
        image = COLOURS[mask] + rng.normal(0, 45, (h, w, 3))
        rgb = np.clip(image, 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"im{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), mask)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    data = tmp_path / "colours"
    make_data(data)
    config = {
        "seed": 0,
        "dataset": {
            "name": "colours",
            "root": str(data),
            "in_channels": 3,
            "num_classes": 3,
            "class_names": ["background", "red", "green"],
            "image_size": None,
            "validation_size": 0.4,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "layout": {"_target_": f"{__name__}.ColourLayout", "root": str(data)},
        },
        "model": {"_target_": f"{__name__}.ColourClassifier"},
        "augmentation": {"name": "none", "train": []},
    }
    path = tmp_path / "colours.pt"
    save_checkpoint({"model": ColourClassifier().state_dict(), "epoch": 1, "config": config}, path)
    return path


def command_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def test_multi_class_predict_and_evaluate_agree(checkpoint, tmp_path):
    common = [f"checkpoint={checkpoint}", "hardware=cpu", "hardware.num_workers=0"]
    pred_dir = tmp_path / "predict"
    predict.run(
        command_config(
            "predict",
            [
                *common,
                f"paths.run_dir={pred_dir}",
                "predict.progress=false",
                "predict.save_masks=true",
                "predict.save_probabilities=true",
            ],
        )
    )
    eval_dir = tmp_path / "evaluate"
    report = evaluate.run(
        command_config(
            "evaluate",
            [
                *common,
                f"paths.run_dir={eval_dir}",
                "evaluate.split=test",
                "evaluate.progress=false",
                "evaluate.worst=2",
            ],
        )
    )
    layout = ColourLayout(tmp_path / "colours")
    with gzip.open(pred_dir / "submission.csv.gz", "rt") as f:
        rows = {r["img"]: r["rle_mask"] for r in csv.DictReader(f)}
    with (eval_dir / "per_image.csv").open() as f:
        scored = {r["image"]: r for r in csv.DictReader(f)}
    confusion = np.zeros((3, 3), np.int64)
    for sample in layout.held_out_samples():
        truth = layout.read_mask(sample.mask)
        labels = cv2.imread(str(pred_dir / "masks" / sample.name), cv2.IMREAD_UNCHANGED)
        assert labels.shape == truth.shape and set(np.unique(labels)) <= {0, 1, 2}
        # The submission encodes every non-background pixel.
        np.testing.assert_array_equal(rle_decode(rows[sample.name], truth.shape), labels > 0)
        for k in (1, 2):
            assert (pred_dir / "probabilities" / f"{sample.image.stem}_class{k}.png").is_file()
            p, t = labels == k, truth == k
            dice = 2 * (p & t).sum() / (p.sum() + t.sum())
            assert float(scored[sample.name][f"dice_{['', 'red', 'green'][k]}"]) == pytest.approx(
                dice, abs=1e-6
            )
        np.add.at(confusion, (truth.reshape(-1), labels.reshape(-1)), 1)
    assert report["confusion_matrix"]["rows_truth_columns_prediction"] == confusion.tolist()
    # Noise makes some pixels ambiguous: the task is neither trivial nor failed.
    assert 0.6 < report["metrics"]["dice"] < 0.99
    assert set(report["per_class"]) == {"red", "green"}
    assert "threshold_sweep" not in report and not (eval_dir / "threshold.json").exists()
    assert json.loads((eval_dir / "metrics.json").read_text())["split"] == "test"
    assert (eval_dir / "confusion_matrix.png").is_file() and (eval_dir / "worst.png").is_file()
