"""The dataset catalogue: every conf/dataset/*.yaml composes with `unet train`, its layout
builds, and on small fake data in that layout it gives labelled samples, a split and a
transformed batch of the configured shape whose masks hold only the declared classes.

The files are globbed, so a new dataset YAML is checked as soon as it exists (and
fails until tests/fake_datasets.py can write fake data in its layout).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from tests import fake_datasets
from tests.helpers import CONF, compose
from unetcli.core.hardware import resolve_hardware
from unetcli.datasets.base import Layout
from unetcli.datasets.layouts import build_layout
from unetcli.datasets.loaders import make_loader
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform

DATASET_FILES = sorted((CONF / "dataset").glob("*.yaml"))
BATCH = 2
IMAGE_SIZE = [32, 48]
CROP_SIZE = [16, 24]


def small_config(name: str, data_dir: Path) -> DictConfig:
    """The train config with dataset=NAME, its sizes (where it sets them) made small."""
    base = compose("train", [f"dataset={name}"]).dataset
    overrides = [f"dataset={name}", f"paths.data_dir={data_dir}", f"trainer.batch_size={BATCH}"]
    if base.get("image_size"):
        overrides.append(f"dataset.image_size=[{IMAGE_SIZE[0]},{IMAGE_SIZE[1]}]")
    if base.get("crop_size"):
        overrides.append(f"dataset.crop_size=[{CROP_SIZE[0]},{CROP_SIZE[1]}]")
    return compose("train", [*overrides, *fake_datasets.SELF_GENERATED.get(name, [])])


def write_fake_data(name: str, root: Path) -> None:
    if name in fake_datasets.SELF_GENERATED:
        return
    if name not in fake_datasets.BY_DATASET:
        pytest.fail(
            f"conf/dataset/{name}.yaml has no fake data: add a generator for its layout to "
            "tests/fake_datasets.py (BY_DATASET)"
        )
    fake_datasets.BY_DATASET[name](root)


@pytest.fixture(scope="module", params=DATASET_FILES, ids=lambda p: p.stem)
def prepared(request, tmp_path_factory) -> tuple[DictConfig, Layout]:
    """(the composed config, its built and prepared layout) on fake data; once per dataset."""
    name = request.param.stem
    cfg = small_config(name, tmp_path_factory.mktemp(name) / "data")
    assert cfg.dataset.name == name
    write_fake_data(name, Path(cfg.dataset.root))
    layout = build_layout(cfg.dataset)
    return cfg, layout


def test_the_catalogue_is_the_folder():
    names = {p.stem for p in DATASET_FILES}
    assert {"synthetic", "carvana", "folder"} <= names
    known = set(fake_datasets.BY_DATASET) | set(fake_datasets.SELF_GENERATED)
    assert names <= known, f"no fake data for {sorted(names - known)}"


def test_layout_yields_labelled_samples_and_a_split(prepared):
    cfg, layout = prepared
    assert layout.root == Path(cfg.dataset.root)
    samples = layout.labelled_samples()
    assert len(samples) >= 3
    assert all(f.is_file() for s in samples for f in layout.mask_files(s))
    layout.check(samples)
    assert any(layout.read_mask(s.mask).any() for s in samples)
    train, val = layout.split(float(cfg.dataset.validation_size), int(cfg.seed))
    names = [s.name for s in train + val]
    assert train and val and len(names) == len(set(names))
    assert set(names) <= {s.name for s in samples}


def one_batch(cfg: DictConfig, layout: Layout, samples: list, split: str, size: int) -> dict:
    """The first batch of `size` samples through the split's transform, as training loads it."""
    transform = build_transform(cfg.dataset, cfg.augmentation, split, seed=int(cfg.seed))
    runtime = resolve_hardware({"device": "cpu", "num_workers": 0})
    loader = make_loader(SegmentationDataset(layout, samples, transform), size, runtime)
    return next(iter(loader))


def check_masks(masks: torch.Tensor, num_classes: int) -> None:
    """Class indices only: 0/1 for a binary dataset (one logit), else 0..K-1."""
    assert masks.dtype == torch.long
    assert int(masks.min()) >= 0 and int(masks.max()) < max(2, num_classes)


def test_training_batch_has_the_configured_shape_and_classes(prepared):
    cfg, layout = prepared
    data = cfg.dataset
    train, _ = layout.split(float(data.validation_size), int(cfg.seed))
    assert len(train) >= cfg.trainer.batch_size
    batch = one_batch(cfg, layout, train, "train", int(cfg.trainer.batch_size))
    size = CROP_SIZE if data.get("crop_size") else IMAGE_SIZE if data.get("image_size") else None
    images, masks = batch["image"], batch["mask"]
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    assert images.shape[:2] == (cfg.trainer.batch_size, int(data.in_channels))
    if size is not None:
        assert list(images.shape[2:]) == size
    assert masks.shape == (images.shape[0], *images.shape[2:])
    check_masks(masks, int(data.num_classes))


def test_validation_batch_keeps_whole_images(prepared):
    cfg, layout = prepared
    data = cfg.dataset
    _, val = layout.split(float(data.validation_size), int(cfg.seed))
    batch = one_batch(cfg, layout, val[:1], "val", 1)
    images, masks = batch["image"], batch["mask"]
    original = (int(batch["height"][0]), int(batch["width"][0]))
    expected = tuple(IMAGE_SIZE) if data.get("image_size") else original
    assert tuple(images.shape[2:]) == expected and images.shape[1] == int(data.in_channels)
    assert masks.shape == (1, *expected)
    check_masks(masks, int(data.num_classes))
