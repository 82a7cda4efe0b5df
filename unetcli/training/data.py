"""The training run's data: the split, the pre-training check, datasets and loaders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from unetcli.build import build_layout, make_loader
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform
from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.losses.weight_map import WeightMapCache


@dataclass
class TrainingData:
    layout: Layout
    train_samples: list[Sample]
    val_samples: list[Sample]
    train_loader: DataLoader
    val_loader: DataLoader | None
    #: Dataset indices of the validation images shown in TensorBoard each epoch.
    examples: frozenset[int]


def _weight_maps(loss_fn: torch.nn.Module, dataset_cfg: DictConfig) -> WeightMapCache | None:
    """A weight-map cache for losses that weigh pixels by their mask (weighted_ce)."""
    if not getattr(loss_fn, "needs_weight_map", False):
        return None
    size = dataset_cfg.image_size
    return WeightMapCache(loss_fn.weight_map, tuple(int(v) for v in size) if size else None)


def split_samples(cfg: DictConfig, layout: Layout) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) samples; `trainer.overfit_batches` keeps a few batches for both.

    Overfitting a few fixed batches is the classic sanity check: a model and
    loss that work drive the training loss to near zero on them.
    """
    train, val = layout.split(float(cfg.dataset.validation_size), int(cfg.seed))
    if not train:
        raise UnetError(
            f"the training split of {layout.root} is empty; lower dataset.validation_size"
        )
    batches = cfg.trainer.overfit_batches
    if batches:
        train = train[: int(batches) * int(cfg.trainer.batch_size)]
        val = list(train)
    return train, val


def build_training_data(
    cfg: DictConfig, runtime: Runtime, loss_fn: torch.nn.Module, generator: torch.Generator
) -> TrainingData:
    """Split and check the dataset, then make the training and validation loaders."""
    layout = build_layout(cfg.dataset)
    train_samples, val_samples = split_samples(cfg, layout)
    layout.check(train_samples + val_samples)
    seed, trainer = int(cfg.seed), cfg.trainer
    augmentation = None if trainer.overfit_batches else cfg.augmentation
    train_set = SegmentationDataset(
        layout,
        train_samples,
        build_transform(cfg.dataset, augmentation, "train", seed=seed),
        _weight_maps(loss_fn, cfg.dataset),
    )
    batch_size = int(trainer.batch_size)
    train_loader = make_loader(
        train_set,
        batch_size,
        runtime,
        shuffle=not trainer.overfit_batches,
        drop_last=len(train_set) > batch_size,
        generator=generator,
    )
    val_loader = None
    if val_samples:
        val_set = SegmentationDataset(
            layout,
            val_samples,
            build_transform(cfg.dataset, cfg.augmentation, "val"),
            _weight_maps(loss_fn, cfg.dataset),
        )
        # Whole large images (e.g. 1500x1500 tiles) validate one at a time.
        val_batch = int(cfg.dataset.get("validation_batch_size") or batch_size)
        val_loader = make_loader(val_set, val_batch, runtime)
    elif trainer.monitor.startswith("val/"):
        raise UnetError(
            f"trainer.monitor={trainer.monitor} needs a validation split, but "
            "dataset.validation_size is 0; set trainer.monitor=train/loss trainer.monitor_mode=min"
        )
    n_examples = min(int(trainer.log_images), len(val_samples))
    spread = np.linspace(0, len(val_samples) - 1, n_examples).round().astype(int).tolist()
    examples = frozenset(spread) if n_examples else frozenset()
    return TrainingData(layout, train_samples, val_samples, train_loader, val_loader, examples)
