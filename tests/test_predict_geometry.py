"""Mapping predictions back to the original image through whatever the val transform did."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.inference.geometry import Geometry, geometry_of, restore_size, tracked
from unetcli.inference.options import inference_options, inference_transform
from unetcli.postprocessing.labels import postprocess, remove_small_objects


def options_node(keys: dict):
    """The inference keys predict reads (conf/inference.yaml, every key stated) with `keys`."""
    return OmegaConf.merge(OmegaConf.load(REPO / "conf" / "inference.yaml"), keys)


def trained_config(image_size, val_ops):
    return OmegaConf.create(
        {
            "dataset": {
                "num_classes": 1,
                "image_size": image_size,
                "crop_size": None,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25],
            },
            "augmentation": {"name": "test", "train": [], "val": val_ops},
        }
    )


PAD32 = {
    "_target_": "albumentations.PadIfNeeded",
    "min_height": None,
    "min_width": None,
    "pad_height_divisor": 32,
    "pad_width_divisor": 32,
    "border_mode": 4,  # reflect-101
}


def disc(height, width):
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 3, height // 2), min(height, width) // 4, 1, -1)
    return mask


def through(cfg, mode, mask):
    """Send the mask through the transform as if it were the model's probability output."""
    transform = tracked(inference_transform(cfg, mode))
    image = np.repeat(mask[..., None] * 255, 3, axis=-1).astype(np.uint8)
    out = transform(image=image)
    geometry = geometry_of(out["applied_transforms"], mask.shape, out["image"].shape[:2], transform)
    # Undo the normalisation: the channel mean is back to 0..1, like a probability map.
    prob = (out["image"][..., 0] * 0.25 + 0.5)[None]
    return out["image"].shape[:2], geometry, restore_size(prob, geometry)


def test_padding_is_cropped_back_exactly():
    cfg = trained_config(None, [PAD32])
    mask = disc(50, 70)
    shape, geometry, back = through(cfg, "full", mask)
    assert shape == (64, 96)  # padded to multiples of 32
    assert geometry.box == (13, 7, 83, 57)
    np.testing.assert_array_equal(back[0] > 0.5, mask.astype(bool))


def test_resize_then_pad_comes_back_aligned():
    cfg = trained_config([40, 60], [PAD32])
    mask = disc(120, 180)
    shape, _, back = through(cfg, "resize", mask)
    assert shape == (64, 64)
    assert back.shape == (1, 120, 180)
    pred = back[0] > 0.5
    iou = (pred & (mask > 0)).sum() / (pred | (mask > 0)).sum()
    assert iou > 0.95
    # Resizing the padded output back whole (ignoring the padding) misplaces the object.
    naive = cv2.resize(np.pad(cv2.resize(mask, (60, 40)), ((12, 12), (2, 2))), (180, 120)) > 0
    assert (naive & (mask > 0)).sum() / (naive | (mask > 0)).sum() < iou - 0.2


def test_crop_in_the_val_list_leaves_background_outside():
    cfg = trained_config(
        None, [{"_target_": "albumentations.CenterCrop", "height": 40, "width": 40}]
    )
    mask = np.ones((60, 80), np.uint8)
    _, geometry, back = through(cfg, "full", mask)
    assert geometry.box == (-20, -10, 60, 50)
    assert back.shape == (1, 60, 80)
    assert back[0, 10:50, 20:60].min() > 0.99 and back[0, :10].max() == 0


def test_a_flip_in_the_val_list_is_refused_by_name():
    cfg = trained_config(None, [{"_target_": "albumentations.HorizontalFlip", "p": 1.0}])
    with pytest.raises(UnetError, match="HorizontalFlip"):
        through(cfg, "full", disc(32, 32))


def test_restore_size_is_a_plain_resize_without_padding():
    probs = np.random.default_rng(0).random((2, 24, 32)).astype(np.float32)
    back = restore_size(probs, Geometry(48, 64, (0, 0, 32, 24)))
    expected = cv2.resize(probs[1], (64, 48), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(back[1], expected)
    assert restore_size(probs, Geometry(24, 32, (0, 0, 32, 24))) is not None


def test_mode_auto_and_errors_name_the_key():
    cfg = trained_config([40, 60], [])
    assert inference_options(options_node({"mode": "auto"}), "predict", cfg).mode == "resize"
    no_size = trained_config(None, [])
    assert inference_options(options_node({"mode": "auto"}), "predict", no_size).mode == "full"
    with pytest.raises(UnetError, match=r"predict\.mode=resize"):
        inference_options(options_node({"mode": "resize"}), "predict", no_size)
    with pytest.raises(UnetError, match=r"evaluate\.window"):
        inference_options(options_node({"mode": "sliding"}), "evaluate", no_size)
    sliding = inference_options(options_node({"mode": "sliding"}), "predict", cfg)
    assert sliding.window == (40, 60)
    with pytest.raises(UnetError, match=r"predict\.mode"):
        inference_options(options_node({"mode": "tiles"}), "predict", cfg)


def test_small_objects_are_removed_per_class():
    labels = np.zeros((40, 40), np.uint8)
    labels[2:20, 2:20] = 1  # 324 px
    labels[30:32, 30:33] = 1  # 6 px speck
    labels[25:35, 2:12] = 2  # 100 px of class 2
    labels[5:7, 5:7] = 2  # 4 px of class 2 inside class 1
    out = remove_small_objects(labels, 50)
    assert out[30:32, 30:33].max() == 0 and out[5:7, 5:7].max() == 0
    assert (out[2:20, 2:20] == 1).sum() == 324 - 4 and (out[25:35, 2:12] == 2).all()
    assert remove_small_objects(labels, 0) is labels


def test_threshold_and_argmax():
    probs = np.array([[[0.2, 0.6], [0.5, 0.9]]], np.float32)
    binary = Task("binary", 1)
    np.testing.assert_array_equal(postprocess(probs, binary, 0.5, 0), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(postprocess(probs, binary, 0.1, 0), [[1, 1], [1, 1]])
    multi = np.array([[[0.8, 0.2], [0.3, 0.3]], [[0.1, 0.3], [0.6, 0.1]], [[0.1, 0.5], [0.1, 0.6]]])
    three = Task("multiclass", 3)
    np.testing.assert_array_equal(postprocess(multi, three, 0.99, 0), [[0, 2], [1, 2]])
    # Multilabel: every plane thresholded on its own, classes may overlap.
    planes = postprocess(multi, Task("multilabel", 3), 0.45, 0)
    np.testing.assert_array_equal(planes, [[[1, 0], [0, 0]], [[0, 0], [1, 0]], [[0, 1], [0, 1]]])


def test_batch_size_follows_the_dataset_for_whole_images():
    cfg = trained_config(None, [])
    cfg.dataset.validation_batch_size = 1  # e.g. 1500x1500 tiles validated one at a time
    whole = inference_options(options_node({"batch_size": None}), "predict", cfg)
    windows = inference_options(
        options_node({"batch_size": None, "mode": "sliding", "window": 64}), "predict", cfg
    )
    given = inference_options(options_node({"batch_size": 3}), "predict", cfg)
    assert (whole.batch_size, windows.batch_size, given.batch_size) == (1, 8, 3)
