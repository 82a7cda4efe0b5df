"""Augmented copies on disk: every labelled image and mask, plus N augmented versions.

Some write-ups augment offline, look through the folder, then train on it. The
copies are written in the `folder` layout (images/, masks/; binary masks as
0/255, class masks as indices), named <stem>_aug<k> so that dataset=folder
keeps each copy in the split of its original (layout.group_pattern).
"""

from __future__ import annotations

import os
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from unetcli.core.drawing import denormalise
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.torch_dataset import transform_pair
from unetcli.errors import UnetError


def fresh_folder(path: Path) -> None:
    """Create `path`; refuse one that holds anything (nothing of the user's is overwritten)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UnetError(
            f"augment.output_dir={path} exists and is not an empty folder; give a new folder "
            "(unet augment never writes into one that holds files)"
        )
    (path / "images").mkdir(parents=True, exist_ok=True)
    (path / "masks").mkdir(exist_ok=True)


def _write(path: Path, picture: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    if not cv2.imwrite(str(tmp), picture):
        raise UnetError(f"cannot write {path}; check the folder is writable and has space")
    os.replace(tmp, path)


def _mask_pixels(labels: np.ndarray, binary: bool) -> np.ndarray:
    if labels.ndim == 3:
        raise UnetError(
            "augment.output_dir writes one mask per image; multilabel datasets (one folder per "
            "class) are not supported yet"
        )
    if binary:  # 0/255, keeping ignore values other than 1
        return np.where(labels == 1, 255, labels).astype(np.uint8)
    return labels.astype(np.uint16 if labels.max(initial=0) > 255 else np.uint8)


def write_copies(
    layout: Layout,
    samples: list[Sample],
    pipelines: tuple[A.Compose, A.Compose],
    dataset_cfg: DictConfig,
    out: Path,
    copies: int,
) -> int:
    """Write each sample (val pipeline) and `copies` augmented versions; returns files written."""
    val, train = pipelines
    binary = int(dataset_cfg.num_classes) == 1
    mean, std = list(dataset_cfg.mean), list(dataset_cfg.std)
    written = 0
    for sample in tqdm(samples, desc="writing augmented copies", unit="image", disable=None):
        image, labels = layout.read_image(sample.image), layout.read_mask(sample.mask)
        for k in range(copies + 1):
            moved, mask, _ = transform_pair(val if k == 0 else train, image, labels)
            stem = sample.image.stem if k == 0 else f"{sample.image.stem}_aug{k}"
            rgb = denormalise(moved, mean, std)
            _write(out / "images" / f"{stem}.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            _write(out / "masks" / f"{stem}.png", _mask_pixels(np.asarray(mask), binary))
            written += 1
    return written
