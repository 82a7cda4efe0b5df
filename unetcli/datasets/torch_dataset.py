"""The bridge from a layout's files to tensors, through an albumentations pipeline.

Layouts give masks as (H, W) class indices or, for multilabel tasks,
(C, H, W) 0/1 planes. Albumentations moves multi-plane masks as (H, W, C),
so `transform_pair` turns planes around on the way in and back on the way
out; everything after it sees (C, H, W) again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import albumentations as A
import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import Dataset

from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.intensity import Normalise, normalisation

if TYPE_CHECKING:
    from unetcli.datasets.preprocessed import PreprocessedStore


def build_transform(
    dataset_cfg: DictConfig,
    augmentation_cfg: DictConfig | None,
    split: str = "val",
    seed: int | None = None,
) -> A.Compose:
    """Resize to dataset.image_size (if set), crop and augment (training), normalise.

    Images come in their stored dtype (uint8, uint16 or float32) and keep it through the
    spatial steps; the last step is dataset.intensity's normalisation (unetcli.datasets.
    intensity), which gives float32 model input.

    `split` is "train" or anything else (validation, test, predict). Training
    adds a random crop of dataset.crop_size (if set; padded where the image is
    smaller) and the augmentation's `train` list; other splits add its `val`
    list (e.g. padding). Image and mask go through the same Compose, so every
    spatial transform moves them together; masks are resized nearest-neighbour.
    `seed` makes the random transforms repeatable (albumentations otherwise draws
    fresh entropy, and a run could not be reproduced).
    """
    resize = _resize(dataset_cfg)
    ops: list[A.BasicTransform] = [] if resize is None else [resize]
    crop = dataset_cfg.get("crop_size")
    if split == "train" and crop:
        crop_h, crop_w = (int(crop), int(crop)) if isinstance(crop, int) else map(int, crop)
        ops.append(A.PadIfNeeded(crop_h, crop_w, border_mode=cv2.BORDER_REFLECT_101))
        ops.append(A.RandomCrop(crop_h, crop_w))
    if augmentation_cfg is not None:
        extra = augmentation_cfg.get("train" if split == "train" else "val")
        if extra:
            ops.extend(instantiate(extra, _convert_="all"))
    ops.append(Normalise(normalisation(dataset_cfg)))
    return A.Compose(ops, strict=True, seed=seed)


def _resize(dataset_cfg: DictConfig) -> A.Resize | None:
    size = dataset_cfg.get("image_size")
    if not size:
        return None
    height, width = (int(v) for v in size)
    return A.Resize(height, width, interpolation=cv2.INTER_LINEAR)


def resize_step(dataset_cfg: DictConfig) -> Callable[..., tuple] | None:
    """build_transform's deterministic resize alone, as f(image, mask or None), or None.

    The data cache (datasets/preprocessed.py) applies it once per file; the pipeline's own
    resize then meets images already at its size and only copies them (OpenCV copies when
    the sizes agree), so cached and uncached samples come out equal.
    """
    resize = _resize(dataset_cfg)
    if resize is None:
        return None
    compose = A.Compose([resize], strict=True)

    def apply(image: np.ndarray, mask: np.ndarray | None) -> tuple:
        if mask is None:
            return compose(image=image)["image"], None
        moved, mask, _ = transform_pair(compose, image, mask)
        return moved, mask

    return apply


def transform_pair(
    transform: A.Compose, image: np.ndarray, mask: np.ndarray, extra: Sequence[np.ndarray] = ()
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(image, mask, extra masks) after `transform`; the mask (H, W) or planes (C, H, W) as given.

    `extra` maps of the mask's size (e.g. a loss weight map) move with it.
    """
    planes = mask.ndim == 3
    kwargs = {"masks": list(extra)} if extra else {}
    out = transform(image=image, mask=mask.transpose(1, 2, 0) if planes else mask, **kwargs)
    moved = out["mask"]
    if planes:
        moved = moved.reshape(*moved.shape[:2], -1).transpose(2, 0, 1)
    return out["image"], moved, list(out.get("masks", []))


class SegmentationDataset(Dataset):
    """Samples read through a layout and transformed; yields image, mask and index.

    `weight_maps(index, mask)`, if given, returns a per-pixel loss weight map
    for the mask (e.g. a unetcli.losses.WeightMapCache); it goes through the
    transform as an extra mask, so it moves with the mask, and comes out as
    item["weight"].

    `store` (a datasets.preprocessed.PreprocessedStore), if given, supplies samples already
    read and resized; a sample it has no entry for is read from its files.
    """

    def __init__(
        self,
        layout: Layout,
        samples: Sequence[Sample],
        transform: A.Compose,
        weight_maps: Callable[[int, np.ndarray], np.ndarray] | None = None,
        store: PreprocessedStore | None = None,
    ) -> None:
        self.layout = layout
        self.samples = list(samples)
        self.transform = transform
        self.weight_maps = weight_maps
        self.store = store

    def __len__(self) -> int:
        return len(self.samples)

    def reseed(self, seed: int) -> None:
        """Give this copy of the transform its own random stream (one per loader worker)."""
        self.transform.set_random_seed(seed)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        sample = self.samples[index]
        cached = None if self.store is None else self.store.read(sample)
        if cached is None:
            image = self.layout.read_image(sample.image)
            mask = None if sample.mask is None else self.layout.read_mask(sample.mask)
            shape = image.shape[:2]
        else:
            image, mask, shape = cached
        item: dict[str, torch.Tensor | int] = {"index": index}
        if mask is None:
            moved = self.transform(image=image)["image"]
        else:
            extra = [] if self.weight_maps is None else [self.weight_maps(index, mask)]
            moved, mask, maps = transform_pair(self.transform, image, mask, extra)
            item["mask"] = torch.from_numpy(np.array(mask, dtype=np.int64))  # a copy, writable
            if maps:
                item["weight"] = torch.from_numpy(np.ascontiguousarray(maps[0])).float()
        # A copy: a cached array (read-only) may come through a pipeline that moved nothing.
        item["image"] = torch.from_numpy(np.array(moved.transpose(2, 0, 1), order="C"))
        item["height"], item["width"] = shape
        return item
