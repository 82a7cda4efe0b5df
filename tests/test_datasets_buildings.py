"""Massachusetts Buildings: RGB labels through the class table, its own split, crops, training."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests import fake_datasets
from tests.helpers import run_command
from unetcli.datasets.buildings import BuildingsLayout
from unetcli.errors import UnetError

THREE_CLASSES = [*fake_datasets.BUILDING_CLASSES, ("road", 255, 0, 0)]


@pytest.fixture(scope="module")
def buildings_root(tmp_path_factory):
    return fake_datasets.buildings(tmp_path_factory.mktemp("mb") / "massachusetts_buildings")


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_rgb_labels_decode_to_building_class(buildings_root):
    layout = BuildingsLayout(buildings_root, num_classes=1)
    sample = layout.labelled_samples()[0]
    rgb = _rgb(sample.mask)
    decoded = layout.read_mask(sample.mask)
    assert decoded.dtype == np.uint8 and set(np.unique(decoded)) == {0, 1}
    np.testing.assert_array_equal(decoded, (rgb == 255).all(-1).astype(np.uint8))
    assert layout.mask_value_problem(rgb) is None


def test_more_colours_make_a_multiclass_task_without_code(tmp_path):
    root = fake_datasets.buildings(tmp_path / "mb3", classes=THREE_CLASSES, tiff=False)
    layout = BuildingsLayout(root, num_classes=3)
    sample = layout.labelled_samples()[0]
    rgb = _rgb(sample.mask)
    decoded = layout.read_mask(sample.mask)
    assert set(np.unique(decoded)) == {0, 1, 2}
    np.testing.assert_array_equal(decoded == 2, (rgb == [255, 0, 0]).all(-1))
    layout.check(layout.labelled_samples())  # every colour is in the table
    with pytest.raises(UnetError, match="lists 3 classes .* set dataset.num_classes=3"):
        _ = BuildingsLayout(root, num_classes=1).table


def test_unknown_colours_are_reported_by_the_check(tmp_path):
    root = fake_datasets.buildings(tmp_path / "mb", tiff=False)
    layout = BuildingsLayout(root, num_classes=1)
    bad = layout.samples_of("val")[0].mask
    rgb = _rgb(bad)
    rgb[:2, :2] = (10, 200, 30)
    cv2.imwrite(str(bad), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with pytest.raises(UnetError, match=r"colours \(10,200,30\) that label_class_dict.csv"):
        layout.check(layout.labelled_samples())


def test_split_is_the_datasets_own_train_and_val_folders(buildings_root):
    layout = BuildingsLayout(buildings_root)
    for seed in (0, 1):
        train, val = layout.split(0.5, seed)
        assert [s.image.parent.name for s in train] == ["train"] * 3
        assert [s.image.parent.name for s in val] == ["val"]
    assert [s.image.parent.name for s in layout.held_out_samples()] == ["test"]
    pooled = BuildingsLayout(buildings_root, official_split=False).split(0.5, 0)
    assert sorted(len(part) for part in pooled) == [2, 2]
    assert layout.inventory() == {"train": 3, "val": 1, "test": 1}


def test_tiff_copy_is_used_when_there_is_no_png(tmp_path, buildings_root):
    root = tmp_path / "mb"
    shutil.copytree(buildings_root, root, ignore=shutil.ignore_patterns("png"))
    layout = BuildingsLayout(root)
    sample = layout.labelled_samples()[0]
    assert sample.image.suffix == ".tiff" and sample.mask.suffix == ".tif"
    assert set(np.unique(layout.read_mask(sample.mask))) == {0, 1}


@pytest.mark.slow
def test_one_training_step_on_crops_validating_whole_tiles(buildings_root, tmp_path, capsys):
    run_command(
        "train",
        [
            "dataset=massachusetts_buildings",
            f"dataset.root={buildings_root}",
            "dataset.crop_size=32",
            "model.widths=[4,8]",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.batch_size=2",
            "trainer.progress=false",
            "hardware.num_workers=0",
        ],
        tmp_path,
    )
    assert "train: 3 images, validation: 1 images" in capsys.readouterr().out
    # Validation saw the whole 48x48 tile (input | truth | prediction), not a 32 crop.
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    grid = acc.Images("val/examples")[0]
    assert (grid.height, grid.width) == (48, 3 * 48)
