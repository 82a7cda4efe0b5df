"""The bridge from a layout's files to tensors, through an albumentations pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import Dataset

from unetcli.datasets.base import Layout, Sample


def build_transform(dataset_cfg: DictConfig, augmentation_cfg: DictConfig | None) -> A.Compose:
    """Resize to dataset.image_size (if set), augment (training only), normalise.

    Image and mask go through the same Compose, so every spatial transform
    moves them together; masks are resized with nearest-neighbour.
    """
    ops: list[A.BasicTransform] = []
    size = dataset_cfg.get("image_size")
    if size:
        height, width = (int(v) for v in size)
        ops.append(A.Resize(height, width, interpolation=cv2.INTER_LINEAR))
    if augmentation_cfg is not None and augmentation_cfg.get("train"):
        ops.extend(instantiate(augmentation_cfg.train, _convert_="all"))
    ops.append(
        A.Normalize(mean=list(dataset_cfg.mean), std=list(dataset_cfg.std), max_pixel_value=255.0)
    )
    return A.Compose(ops, strict=True)


class SegmentationDataset(Dataset):
    """Samples read through a layout and transformed; yields image, mask and index."""

    def __init__(self, layout: Layout, samples: Sequence[Sample], transform: A.Compose) -> None:
        self.layout = layout
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        sample = self.samples[index]
        image = self.layout.read_image(sample.image)
        item: dict[str, torch.Tensor | int] = {"index": index}
        if sample.mask is not None:
            mask = self.layout.read_mask(sample.mask)
            out = self.transform(image=image, mask=mask)
            item["mask"] = torch.from_numpy(np.ascontiguousarray(out["mask"])).long()
        else:
            out = self.transform(image=image)
        item["image"] = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))
        item["height"], item["width"] = image.shape[:2]
        return item
