"""dataset=folder: a user's own images/ and masks/, every declared mask kind, --config-dir."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests import fake_datasets
from tests.conftest import run_unet
from unetcli.datasets.folder import FolderLayout
from unetcli.datasets.torch_dataset import build_transform
from unetcli.errors import UnetError


def _one_mask(tmp_path, values: np.ndarray, name="m.png") -> tuple:
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "images" / "m.jpg"), np.zeros((*values.shape[:2], 3), np.uint8))
    cv2.imwrite(str(root / "masks" / name), values)
    return root, root / "masks" / name


BLOB = np.zeros((8, 10), np.uint8)
BLOB[2:6, 3:8] = 1


@pytest.mark.parametrize(
    "stored",
    [BLOB, BLOB * 255, BLOB.astype(np.uint16) * 65535],
    ids=["0-1", "0-255", "16-bit"],
)
def test_binary_masks_decode_to_0_1(tmp_path, stored):
    root, mask = _one_mask(tmp_path, stored)
    layout = FolderLayout(root)
    (sample,) = layout.labelled_samples()
    assert sample.mask == mask and sample.image.suffix == ".jpg"  # stems match, not extensions
    np.testing.assert_array_equal(layout.read_mask(mask), BLOB)
    layout.check([sample])


def test_class_index_masks(tmp_path):
    stored = BLOB.copy()
    stored[0, :] = 2
    root, mask = _one_mask(tmp_path, stored)
    layout = FolderLayout(root, num_classes=3)
    np.testing.assert_array_equal(layout.read_mask(mask), stored)
    layout.check(layout.labelled_samples())
    with pytest.raises(UnetError, match="values 2 outside 0..1"):
        FolderLayout(root, num_classes=2).check(layout.labelled_samples())


def test_0_255_masks_declared_as_two_classes_get_a_hint(tmp_path):
    root, _ = _one_mask(tmp_path, BLOB * 255)
    layout = FolderLayout(root, num_classes=2)
    with pytest.raises(UnetError, match="0/255 masks are binary: set dataset.num_classes=1"):
        layout.check(layout.labelled_samples())


def test_rgb_colour_masks_with_a_class_table(tmp_path):
    colours = np.array([[0, 0, 0], [0, 255, 0], [255, 0, 255]], np.uint8)
    index = BLOB.copy()
    index[0, :] = 2
    root, mask = _one_mask(tmp_path, cv2.cvtColor(colours[index], cv2.COLOR_RGB2BGR))
    (root / "classes.csv").write_text("name,r,g,b\nbg,0,0,0\ncell,0,255,0\nedge,255,0,255\n")
    layout = FolderLayout(root, num_classes=3, class_csv="classes.csv")
    layout.prepare()
    np.testing.assert_array_equal(layout.read_mask(mask), index)
    layout.check(layout.labelled_samples())


def test_multi_valued_binary_masks_need_a_threshold(tmp_path):
    stored = BLOB * 200
    stored[0, 0] = 3  # e.g. JPEG noise
    root, mask = _one_mask(tmp_path, stored)
    with pytest.raises(UnetError, match="set dataset.layout.threshold=T"):
        FolderLayout(root).check(FolderLayout(root).labelled_samples())
    layout = FolderLayout(root, threshold=127)
    layout.check(layout.labelled_samples())
    np.testing.assert_array_equal(layout.read_mask(mask), BLOB)


def test_16_bit_images_keep_their_contrast(tmp_path):
    root, _ = _one_mask(tmp_path, BLOB * 255)
    image = np.arange(80, dtype=np.uint16).reshape(8, 10) * 50  # 12-bit range, max 3950
    cv2.imwrite(str(root / "images" / "m.tif"), image)
    (root / "images" / "m.jpg").unlink()
    for channels in (1, 3):
        layout = FolderLayout(root, channels=channels)
        (sample,) = layout.labelled_samples()
        read = layout.read_image(sample.image)
        # Kept as stored (not the high byte only, 0..15) until the normalisation.
        assert read.dtype == np.uint16 and read.shape == (8, 10, channels)
        assert read.min() == 0 and read.max() == 3950
        model_input = build_transform(OmegaConf.create({"mean": [0.0], "std": [1.0]}), None)
        pixels = model_input(image=read)["image"]
        assert pixels.min() == 0 and pixels.max() == 1  # per_image: stretched to 0..1


def test_mask_names_that_match_no_image_get_a_hint(tmp_path):
    root = fake_datasets.folder(tmp_path / "cells", n=3)
    for mask in (root / "masks").iterdir():
        mask.rename(mask.with_name(f"{mask.stem}_mask.png"))
    with pytest.raises(UnetError, match="dataset.layout.mask_suffix=_mask"):
        FolderLayout(root).labelled_samples()
    assert len(FolderLayout(root, mask_suffix="_mask").labelled_samples()) == 3


def test_split_is_seeded_by_image(tmp_path):
    layout = FolderLayout(fake_datasets.folder(tmp_path / "cells", n=10))
    train, val = layout.split(0.2, seed=3)
    assert len(train) == 8 and len(val) == 2 and layout.split(0.2, seed=3) == (train, val)
    assert all(s.mask.stem == s.image.stem for s in train + val)


def test_missing_folders_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnetError, match="has no images/ folder"):
        FolderLayout(tmp_path / "empty").prepare()


@pytest.mark.slow
def test_own_yaml_in_own_config_dir_trains(tmp_path):
    """A YAML of the user's own, found through --config-dir (docs/guides/your-own-data.md)."""
    data = fake_datasets.folder(tmp_path / "cells", n=10)
    (tmp_path / "myconf" / "dataset").mkdir(parents=True)
    (tmp_path / "myconf" / "dataset" / "cells.yaml").write_text(
        f"defaults:\n  - folder\n  - _self_\n\nname: cells\nroot: {data}\n"
        "image_size: [32, 32]\nvalidation_size: 0.3\n"
    )
    proc = run_unet(
        "train",
        "--config-dir",
        str(tmp_path / "myconf"),
        "dataset=cells",
        f"paths.output_root={tmp_path / 'outputs'}",
        "model.widths=[4,8]",
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=1",
        "trainer.batch_size=4",
        "trainer.progress=false",
        "hardware.num_workers=0",
        cwd=tmp_path,
    )
    assert f"train: 7 images, validation: 3 images ({data})" in proc.stdout


def test_ignore_index_survives_binary_decoding_and_the_check(tmp_path):
    stored = BLOB.copy()
    stored[7, :] = 255  # a row nobody labelled
    root, mask = _one_mask(tmp_path, stored)
    layout = FolderLayout(root, ignore_index=255)
    decoded = layout.read_mask(mask)
    assert (decoded[7] == 255).all()  # not turned into foreground
    np.testing.assert_array_equal(decoded[:7], BLOB[:7])
    layout.check(layout.labelled_samples())
    classes = FolderLayout(root, num_classes=2, ignore_index=255)
    classes.check(classes.labelled_samples())  # 255 is not "outside 0..1" when ignored
    np.testing.assert_array_equal(classes.read_mask(mask), stored)
