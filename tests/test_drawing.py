"""One drawing module: a class has one colour in every picture the commands make."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import torch

from unetcli.augmentation.preview import Preview
from unetcli.core.drawing import IGNORED, class_colour, colour_labels, overlay
from unetcli.core.task import Task
from unetcli.datasets.base import Layout, Sample
from unetcli.evaluation.gallery import WorstImages, render_gallery
from unetcli.training.example_grid import comparison_grid

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A grey 40x48 image with a class-1 square and a class-2 bar."""
    image = np.full((40, 48, 3), 90, np.uint8)
    mask = np.zeros((40, 48), np.uint8)
    mask[5:20, 5:20] = 1
    mask[25:35, 10:40] = 2
    return image, mask


class ArrayLayout(Layout):
    """One in-memory image and mask, to feed the augment preview."""

    def __init__(self, image: np.ndarray, mask: np.ndarray) -> None:
        super().__init__(".")
        self.image, self.mask = image, mask

    def read_image(self, path: Path) -> np.ndarray:
        return self.image

    def read_mask(self, path: Path) -> np.ndarray:
        return self.mask


def has(picture: np.ndarray, colour: tuple[int, int, int]) -> int:
    """How many pixels of an RGB picture are exactly `colour`."""
    return int((picture == np.asarray(colour, np.uint8)).all(-1).sum())


def test_each_class_has_one_colour_in_preview_tensorboard_overlay_and_gallery():
    image, mask = scene()
    task = Task("multiclass", 3)
    normalise = A.Compose([A.Normalize(mean=MEAN, std=STD, max_pixel_value=255.0)])
    layout = ArrayLayout(image, mask)
    preview = Preview(normalise, normalise, MEAN, STD, variants=1).grid(
        layout, [Sample(Path("a.png"), Path("a.png"), "a", "a.png")]
    )
    normalised = torch.from_numpy(normalise(image=image)["image"].transpose(2, 0, 1))[None]
    labels = torch.from_numpy(mask).long()[None]
    board = comparison_grid(normalised, labels, labels, MEAN, STD, task)
    drawn = overlay(image, mask, truth=mask)
    worst = WorstImages(1)
    worst.add(0, "a.png", 0.5, mask, mask)
    gallery = render_gallery(worst, task, None)
    for k in (1, 2):
        colour = class_colour(k)
        for name, picture in [
            ("augment preview", preview),
            ("tensorboard grid", board),
            ("predict overlay", drawn),
            ("evaluate gallery", gallery),
        ]:
            assert has(picture, colour) > 10, f"class {k} lacks its colour in the {name}"
    assert class_colour(1) != class_colour(2)
    # The TensorBoard truth and prediction columns are the class colours themselves.
    width = mask.shape[1]
    np.testing.assert_array_equal(board[:, width : 2 * width], colour_labels(mask))


def test_binary_foreground_and_the_first_multilabel_plane_are_class_1():
    _, mask = scene()
    binary = (mask == 1).astype(np.uint8)
    planes = np.stack([mask == 1, mask == 2]).astype(np.uint8)
    assert has(colour_labels(binary), class_colour(1)) == binary.sum()
    coloured = colour_labels(planes)
    assert has(coloured, class_colour(1)) == binary.sum()
    assert has(coloured, class_colour(2)) == (mask == 2).sum()


def test_overlapping_planes_mix_their_colours_and_ignored_pixels_are_grey():
    planes = np.zeros((2, 6, 6), np.uint8)
    planes[0, :, :4] = 1
    planes[1, :, 2:] = 1
    planes[1, 0, 5] = 255
    out = colour_labels(planes, ignore_index=255)
    mixed = (np.asarray(class_colour(1)) + np.asarray(class_colour(2))) / 2
    np.testing.assert_array_equal(out[3, 3], np.round(mixed).astype(np.uint8))
    assert tuple(out[0, 5]) == IGNORED


def test_truth_outlines_are_dashed_and_predictions_solid():
    image, mask = scene()
    square = (mask == 1).astype(np.uint8)
    solid = overlay(image, square, alpha=0)
    dashed = overlay(image, np.zeros_like(square), truth=square, alpha=0)
    colour = class_colour(1)
    assert 0.3 * has(solid, colour) < has(dashed, colour) < 0.8 * has(solid, colour)
    assert has(overlay(image, np.zeros_like(square), alpha=0), colour) == 0
