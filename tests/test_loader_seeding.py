"""Seeded runs see the same augmented batches, with or without loader workers."""

import pytest
import torch
from omegaconf import OmegaConf

from unetcli.build import make_loader
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform
from unetcli.hardware import resolve_hardware

DATASET = OmegaConf.create({"image_size": [32, 48], "mean": [0.5] * 3, "std": [0.25] * 3})
FLIPS = OmegaConf.create(
    {
        "train": [
            {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
            {"_target_": "albumentations.VerticalFlip", "p": 0.5},
        ]
    }
)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeding") / "syn"
    layout = SyntheticLayout(root, num_objects=8, views=2, num_test=2, height=40, width=60)
    layout.prepare()
    return layout


def epoch_pixels(layout, workers: int, seed: int) -> torch.Tensor:
    transform = build_transform(DATASET, FLIPS, "train", seed=seed)
    dataset = SegmentationDataset(layout, layout.labelled_samples(), transform)
    runtime = resolve_hardware({"device": "cpu", "num_workers": workers})
    generator = torch.Generator().manual_seed(seed)
    loader = make_loader(dataset, 4, runtime, shuffle=True, generator=generator)
    return torch.cat([batch["image"].flatten() for batch in loader])


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_augmented_batches(layout, workers):
    first = epoch_pixels(layout, workers, seed=1)
    assert torch.equal(first, epoch_pixels(layout, workers, seed=1))
    assert not torch.equal(first, epoch_pixels(layout, workers, seed=2))
