"""Montgomery chest X-rays: two lung masks merged, grayscale input, a seeded three-way split."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests import fake_datasets
from tests.helpers import run_command
from unetcli.datasets.montgomery import MontgomeryLayout
from unetcli.errors import UnetError


@pytest.fixture(scope="module")
def montgomery_root(tmp_path_factory):
    # Nested as in the Kaggle archive: the layout finds the set below dataset.root.
    root = tmp_path_factory.mktemp("mc") / "montgomery"
    fake_datasets.montgomery(root / "Montgomery" / "MontgomerySet")
    return root


def test_mask_is_the_union_of_both_lungs(montgomery_root):
    layout = MontgomeryLayout(montgomery_root)
    assert layout.base.name == "MontgomerySet"
    sample = layout.all_samples()[1]
    left = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE)
    right = cv2.imread(str(layout.mask_files(sample)[1]), cv2.IMREAD_GRAYSCALE)
    assert left.any() and right.any() and not (left & right).any()
    mask = layout.read_mask(sample.mask)
    np.testing.assert_array_equal(mask, ((left > 0) | (right > 0)).astype(np.uint8))


def test_masks_stored_as_0_1_decode_the_same(tmp_path):
    root = fake_datasets.montgomery(tmp_path / "set", n=2, mask_value=1)
    layout = MontgomeryLayout(root)
    sample = layout.all_samples()[0]
    assert layout.read_mask(sample.mask).max() == 1
    layout.check(layout.all_samples())


def test_grayscale_is_one_channel_or_replicated_to_three(montgomery_root):
    sample = MontgomeryLayout(montgomery_root).all_samples()[0]
    gray = MontgomeryLayout(montgomery_root, channels=1).read_image(sample.image)
    rgb = MontgomeryLayout(montgomery_root, channels=3).read_image(sample.image)
    assert gray.shape[-1] == 1 and rgb.shape[-1] == 3
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray[..., 0])


def test_split_holds_out_a_fixed_test_set_and_validates_by_the_run_seed(montgomery_root):
    layout = MontgomeryLayout(montgomery_root, test_size=0.2, test_seed=0)
    test = {s.name for s in layout.held_out_samples()}
    assert len(test) == 2
    splits = []
    for seed in range(4):
        train, val = layout.split(0.25, seed)
        names = [s.name for s in train + val]
        assert len(names) == 8 and not set(names) & test
        assert {s.name for s in layout.held_out_samples()} == test  # never moves with the seed
        splits.append(tuple(s.name for s in val))
    assert len(set(splits)) > 1
    other = {s.name for s in MontgomeryLayout(montgomery_root, test_size=0.2, test_seed=1)
             .held_out_samples()}  # fmt: skip
    assert other != test


def test_a_missing_lung_mask_stops_the_check(tmp_path):
    root = fake_datasets.montgomery(tmp_path / "set", n=3)
    (root / "ManualMask" / "rightMask" / "MCUCXR_0002_1.png").unlink()
    layout = MontgomeryLayout(root, test_size=0)
    with pytest.raises(UnetError, match=r"1 image\(s\) of 3 have no mask file.*MCUCXR_0002_1"):
        layout.check(layout.labelled_samples())


@pytest.mark.slow
def test_one_training_step_on_one_channel(montgomery_root, tmp_path, capsys):
    run_command(
        "train",
        [
            "dataset=montgomery",
            f"dataset.root={montgomery_root}",
            "dataset.image_size=[32,32]",
            "model.widths=[4,8]",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.batch_size=2",
            "trainer.progress=false",
            "hardware.num_workers=0",
        ],
        tmp_path,
    )
    # 10 images: 1 held out for test, 2 of the other 9 for validation.
    assert "train: 7 images, validation: 2 images" in capsys.readouterr().out
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    first = next(v for k, v in state["model"].items() if v.ndim == 4)
    assert first.shape[1] == 1  # the first convolution takes one (gray) channel
