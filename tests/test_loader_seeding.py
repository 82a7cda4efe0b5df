"""Seeded runs see the same augmented batches, and each loader worker augments differently.

Every worker process gets a copy of the dataset's albumentations pipeline with the
same seed; `unetcli.datasets.loaders._seed_worker` reseeds each copy from the worker's own
torch seed. Without that, worker 1 would replay worker 0's flips exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import get_worker_info

from unetcli.core.hardware import resolve_hardware
from unetcli.datasets.loaders import make_loader
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform

DATASET = OmegaConf.create({"image_size": [32, 48], "mean": [0.5] * 3, "std": [0.25] * 3})
FLIPS = OmegaConf.create(
    {
        "train": [
            {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
            {"_target_": "albumentations.VerticalFlip", "p": 0.5},
        ]
    }
)
BATCH = 4


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeding") / "syn"
    layout = SyntheticLayout(root, num_objects=8, views=2, num_test=2, height=40, width=60)
    layout.prepare()
    return layout


class WorkerTagged(SegmentationDataset):
    """The real dataset, with the id of the loader worker that produced each item."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        info = get_worker_info()
        item["worker"] = -1 if info is None else info.id
        return item


def loader_for(dataset: SegmentationDataset, workers: int, seed: int):
    runtime = resolve_hardware({"device": "cpu", "num_workers": workers})
    generator = torch.Generator().manual_seed(seed)
    return make_loader(dataset, BATCH, runtime, shuffle=True, generator=generator)


def epoch_pixels(layout, workers: int, seed: int) -> torch.Tensor:
    transform = build_transform(DATASET, FLIPS, "train", seed=seed)
    dataset = SegmentationDataset(layout, layout.labelled_samples(), transform)
    return torch.cat([batch["image"].flatten() for batch in loader_for(dataset, workers, seed)])


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_augmented_batches(layout, workers):
    first = epoch_pixels(layout, workers, seed=1)
    assert torch.equal(first, epoch_pixels(layout, workers, seed=1))
    assert not torch.equal(first, epoch_pixels(layout, workers, seed=2))


def test_each_worker_draws_its_own_augmentations(layout):
    """One image repeated: any difference between the workers' batches is augmentation."""
    one = layout.labelled_samples()[0]
    transform = build_transform(DATASET, FLIPS, "train", seed=3)
    dataset = WorkerTagged(layout, [one] * (8 * BATCH), transform)
    by_worker: dict[int, list[torch.Tensor]] = {0: [], 1: []}
    for batch in loader_for(dataset, workers=2, seed=3):
        (worker,) = set(batch["worker"].tolist())
        by_worker[worker].append(batch["image"])
    first, second = (torch.stack(by_worker[w]) for w in (0, 1))
    assert first.shape == second.shape == (4, BATCH, 3, 32, 48)
    # The n-th batch of worker 0 and of worker 1 are the n-th draws of their transforms.
    assert not torch.equal(first, second), "both loader workers replayed the same augmentations"
    # ... and each worker does flip: its 16 images are not all the same picture.
    for images in (first, second):
        flat = images.flatten(0, 1)
        assert any(not torch.equal(flat[0], other) for other in flat[1:])


class ThreadsReported(SegmentationDataset):
    """The real dataset, with the OpenCV and torch thread counts of the process loading it."""

    def __getitem__(self, index: int) -> dict:
        import cv2

        item = super().__getitem__(index)
        item["threads"] = torch.tensor([cv2.getNumThreads(), torch.get_num_threads()])
        return item


def test_workers_compute_with_one_opencv_and_one_torch_thread(layout):
    """Workers must not take the model's cores: one OpenCV and one torch thread each.

    The pytest process has used OpenCV's pool before this (other tests), which is the case
    where setting the count inside a forked worker could deadlock.
    """
    import cv2

    cv2.resize(np.zeros((512, 512), np.float32), (700, 700))  # start the parent's pool
    transform = build_transform(DATASET, FLIPS, "train", seed=4)
    dataset = ThreadsReported(layout, layout.labelled_samples()[:8], transform)
    before = cv2.getNumThreads()
    try:
        counts = {tuple(t) for b in loader_for(dataset, 2, 4) for t in b["threads"].tolist()}
    finally:
        cv2.setNumThreads(before)
    assert counts == {(1, 1)}


def test_a_loader_without_workers_also_leaves_opencv_one_thread(layout):
    """With no workers the main process loads between steps: OpenCV's own pool would then
    compete with torch's threads, and a run's OpenCV threads must not depend on whether
    the tuner happened to build a worker loader first."""
    import cv2

    transform = build_transform(DATASET, FLIPS, "train", seed=4)
    dataset = ThreadsReported(layout, layout.labelled_samples()[:4], transform)
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        counts = {tuple(t) for b in loader_for(dataset, 0, 4) for t in b["threads"].tolist()}
    finally:
        cv2.setNumThreads(before)
    assert {opencv for opencv, _ in counts} == {1}
