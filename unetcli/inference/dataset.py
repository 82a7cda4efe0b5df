"""Images (and true masks, when known) read and transformed in loader workers for inference.

Unlike the training dataset, each item keeps its original size and where it
lies in the transformed input (its `Geometry`), and the true mask stays at
the original resolution: scores and submissions are computed there.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from unetcli.core.placement import Geometry
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.preprocessed import PreprocessedStore
from unetcli.inference.geometry import geometry_of, tracked


class InferenceDataset(Dataset):
    """Yields dicts: index, image (C, h, w) float tensor, geometry tuple, and the true mask
    at the original size: (H, W), multilabel planes (C, H, W), or None."""

    def __init__(
        self,
        layout: Layout,
        samples: Sequence[Sample],
        transform: A.Compose,
        with_masks: bool = False,
        store: PreprocessedStore | None = None,
    ) -> None:
        """`store`: the data cache's entries (images already at the transform's resize
        size), read instead of the files where a sample has one."""
        self.layout = layout
        self.samples = list(samples)
        self.transform = tracked(transform)
        self.with_masks = with_masks
        self.store = store

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        entry = None if self.store is None else self.store.read(sample)
        if entry is None:
            image, geometry = prepare(self.transform, self.layout.read_image(sample.image))
        else:  # the resize already done: the transform's own meets its size and copies
            image, geometry = prepare(self.transform, entry[0])
            geometry = Geometry(*entry[2], geometry.box)  # back to the file's own size
        mask = None
        if self.with_masks and sample.mask is not None:
            mask = torch.from_numpy(np.ascontiguousarray(self.layout.read_mask(sample.mask)))
        return {"index": index, "image": image, "geometry": geometry.as_tuple(), "mask": mask}


def prepare(transform: A.Compose, image: np.ndarray) -> tuple[torch.Tensor, Geometry]:
    """An image (H, W, C) as the model takes it (C, h, w), and where it lies in that input.

    `transform` records what it applies (`inference.geometry.tracked`).
    """
    out = transform(image=image)
    geometry = geometry_of(
        out["applied_transforms"], image.shape[:2], out["image"].shape[:2], transform
    )
    return torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1))), geometry


def collate_items(items: list[dict]) -> list[dict]:
    """Keep a batch as a list: images of different sizes are grouped later, by shape."""
    return items


def same_shape_groups(items: list[dict]) -> list[list[dict]]:
    """Consecutive runs of items whose images share a shape (each run is one forward pass)."""
    groups: list[list[dict]] = []
    for item in items:
        if groups and groups[-1][0]["image"].shape == item["image"].shape:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
