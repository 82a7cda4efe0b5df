"""Carvana's layout: GIF 0/1 masks, the split grouped by car, sample_submission order, training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests import fake_datasets
from tests.helpers import run_command
from unetcli.datasets.carvana import CarvanaLayout, car_id


@pytest.fixture(scope="module")
def carvana_root(tmp_path_factory):
    return fake_datasets.carvana(tmp_path_factory.mktemp("carvana") / "carvana")


def test_gif_masks_decode_to_their_0_1_values(carvana_root):
    layout = CarvanaLayout(carvana_root)
    for sample in layout.labelled_samples()[:4]:
        stored = np.asarray(Image.open(sample.mask))  # palette indices 0/1
        decoded = layout.read_mask(sample.mask)
        assert set(np.unique(stored)) == {0, 1}
        np.testing.assert_array_equal(decoded, stored)
        image = layout.read_image(sample.image)
        assert image.shape == (*decoded.shape, 3) and image.dtype == np.uint8


def test_split_keeps_all_views_of_a_car_together_and_follows_the_seed(carvana_root):
    layout = CarvanaLayout(carvana_root)
    train, val = layout.split(0.4, seed=7)
    assert len(train) + len(val) == 20 and len(val) == 8  # 2 of 5 cars, 4 views each
    assert not {car_id(s.image.stem) for s in train} & {car_id(s.image.stem) for s in val}
    assert layout.split(0.4, seed=7) == (train, val)
    splits = {tuple(s.name for s in layout.split(0.4, seed=k)[1]) for k in range(6)}
    assert len(splits) > 1


def test_test_images_follow_sample_submission_order(carvana_root):
    names = [s.name for s in CarvanaLayout(carvana_root).held_out_samples()]
    assert names == sorted(names, reverse=True)  # the fake sample_submission.csv is reversed


def test_inventory_counts_what_download_checks(carvana_root):
    assert CarvanaLayout(carvana_root).inventory() == {"labelled": 20, "test": 3}


@pytest.mark.slow
def test_one_training_step(carvana_root, tmp_path, capsys):
    result = run_command(
        "train",
        [
            "dataset=carvana",
            f"dataset.root={carvana_root}",
            "dataset.image_size=[32,48]",
            "model.widths=[4,8]",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.batch_size=4",
            "trainer.progress=false",
            "hardware.num_workers=0",
        ],
        tmp_path,
    )
    out = capsys.readouterr().out
    assert "train: 16 images, validation: 4 images" in out and "unet train: done" in out
    assert result["epochs"] == 1 and (tmp_path / "checkpoints" / "best.pt").is_file()
