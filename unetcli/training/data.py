"""The training run's data: the split, the pre-training check, datasets and loaders.

Each training epoch is a function of (seed, epoch) alone: the order of the
images comes from a generator seeded with both, and every sample's
augmentation from a seed of its own (seed, epoch, index). So a resumed run
sees exactly the batches an uninterrupted one would, whatever the number of
loader workers, and a split of the epoch across processes changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from unetcli.core.hardware import Runtime
from unetcli.core.seeding import mix
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.folds import dataset_split
from unetcli.datasets.intensity import check_transforms, resolve_intensity
from unetcli.datasets.layouts import build_layout
from unetcli.datasets.loaders import loader_settings
from unetcli.datasets.preprocessed import PreprocessedStore, checked_samples, open_store
from unetcli.datasets.sizes import mixed_sizes
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform, resize_step
from unetcli.distributed.processes import Processes, SingleProcess
from unetcli.errors import UnetError
from unetcli.losses.weight_map import WeightMapCache
from unetcli.training.bad_files import MarkBadFiles, collate_marking_bad


class EpochSampler(Sampler):
    """Yields (sample seed, index) for one epoch, in an order seeded by (seed, epoch)."""

    def __init__(self, size: int, seed: int, shuffle: bool) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch = 1
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start `epoch`'s order; `skip` leaves out its first samples (a mid-epoch resume)."""
        self.epoch = int(epoch)
        self.skip = int(skip)

    def __len__(self) -> int:
        return self.size - self.skip

    def epoch_items(self) -> list[tuple[int, int]]:
        """The whole epoch's (sample seed, index) pairs, before any skip."""
        order = range(self.size)
        if self.shuffle:
            generator = torch.Generator().manual_seed(mix(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        return [(mix(self.seed, self.epoch, index), index) for index in order]

    def __iter__(self):
        yield from self.epoch_items()[self.skip :]


class DistributedEpochSampler(EpochSampler):
    """One process's share of an EpochSampler epoch, as torch's DistributedSampler shares one.

    The epoch's order is the single-process order; process r takes every
    `world_size`-th item from position r, after the tail that does not divide
    evenly is dropped (no image is repeated to pad). Batch k of every process
    together hold exactly the images of batch k of one process with a batch
    `world_size` times larger, each with the same augmentation seed.
    """

    def __init__(self, size: int, seed: int, shuffle: bool, rank: int, world_size: int) -> None:
        super().__init__(size, seed, shuffle)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return (self.size // self.world_size * self.world_size - self.skip) // self.world_size

    def __iter__(self):
        # `skip` counts positions of the whole epoch (steps x batch x processes).
        usable = self.size // self.world_size * self.world_size
        yield from self.epoch_items()[:usable][self.skip + self.rank :: self.world_size]


def drops_last(share: int, batch_size: int) -> bool:
    """A process's epoch is cut to whole batches when it holds more than one batch; a
    smaller one stays a single short batch (a too-large batch size still trains)."""
    return share > batch_size


def batches_per_epoch(samples: int, batch_size: int, world_size: int = 1) -> int:
    """Training steps each of `world_size` processes takes per epoch: its share of the
    samples (the tail that does not divide is dropped, as the sampler drops it), batched
    as the training loader batches it."""
    share = samples // world_size
    return share // batch_size if drops_last(share, batch_size) else min(share, 1)


class SeededSamples(Dataset):
    """A dataset whose items are asked for as (seed, index): the augmentation uses that seed."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        seed, index = key
        self.dataset.transform.set_random_seed(seed)
        return self.dataset[index]


@dataclass
class TrainingData:
    layout: Layout
    train_samples: list[Sample]
    val_samples: list[Sample]
    train_loader: DataLoader
    val_loader: DataLoader | None
    sampler: EpochSampler
    #: Dataset indices of the validation images shown in TensorBoard each epoch.
    examples: frozenset[int]
    #: Validation sees whole images (no `dataset.image_size`) of more than one size:
    #: cuDNN autotuning is turned off while it runs (`hardware.varying_shapes`).
    val_sizes_vary: bool = False
    #: Seconds of the fixed costs paid here (the file check, the data cache).
    costs: dict[str, float] = field(default_factory=dict)


def _weight_maps(loss_fn: torch.nn.Module, dataset_cfg: DictConfig) -> WeightMapCache | None:
    """A weight-map cache for losses that weigh pixels by their mask (weighted_ce)."""
    if not getattr(loss_fn, "needs_weight_map", False):
        return None
    size = dataset_cfg.image_size
    return WeightMapCache(loss_fn.weight_map, tuple(int(v) for v in size) if size else None)


def split_samples(cfg: DictConfig, layout: Layout) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) samples; `trainer.overfit_batches` keeps a few batches for both.

    In that mode an epoch goes over the fixed batches `trainer.overfit_repeats`
    times, so the run takes many steps but writes few checkpoints.

    Overfitting a few fixed batches is the classic sanity check: a model and
    loss that work drive the training loss to near zero on them.
    """
    train, val = dataset_split(layout, cfg.dataset, int(cfg.seed))
    if not train:
        raise UnetError(
            f"the training split of {layout.root} is empty; lower dataset.validation_size"
        )
    batches = cfg.trainer.overfit_batches
    if batches:
        fixed = train[: int(batches) * int(cfg.trainer.batch_size)]
        return fixed * int(cfg.trainer.overfit_repeats), fixed
    return train, val


def _sampler(size: int, cfg: DictConfig, processes: Processes) -> EpochSampler:
    shuffle = not cfg.trainer.overfit_batches
    if processes.world_size == 1:
        return EpochSampler(size, int(cfg.seed), shuffle)
    return DistributedEpochSampler(
        size, int(cfg.seed), shuffle, processes.rank, processes.world_size
    )


def build_training_data(
    cfg: DictConfig,
    runtime: Runtime,
    loss_fn: torch.nn.Module,
    processes: Processes | None = None,
) -> TrainingData:
    """Split and check the dataset, then make the training and validation loaders.

    With several processes each trains on its share of every epoch and
    validates a contiguous block of whole validation batches (see
    `SingleProcess.shard`), so that gathered figures equal one process's.
    """
    processes = processes or SingleProcess()
    layout = build_layout(cfg.dataset)
    train_samples, val_samples = split_samples(cfg, layout)
    store, costs = _checked_store(cfg, layout, train_samples + val_samples, processes)
    seed, trainer = int(cfg.seed), cfg.trainer
    augmentation = None if trainer.overfit_batches else cfg.augmentation
    dtype = resolve_intensity(cfg.dataset, layout, train_samples, seed, processes.is_main)
    check_transforms(augmentation, int(cfg.dataset.in_channels), dtype)
    train_set = SegmentationDataset(
        layout,
        train_samples,
        build_transform(cfg.dataset, augmentation, "train", seed=seed),
        _weight_maps(loss_fn, cfg.dataset),
        store,
    )
    sampler = _sampler(len(train_set), cfg, processes)
    train_loader = _training_loader(
        train_set, train_samples, sampler, int(trainer.batch_size), runtime
    )
    val_loader = None
    if val_samples:
        val_set = SegmentationDataset(
            layout,
            val_samples,
            build_transform(cfg.dataset, cfg.augmentation, "val"),
            _weight_maps(loss_fn, cfg.dataset),
            store,
        )
        val_loader = _validation_loader(cfg, val_set, runtime, processes)
    elif trainer.monitor.startswith("val/"):
        _check_unmonitored(cfg)
    n_examples = min(int(trainer.log_images), len(val_samples))
    spread = np.linspace(0, len(val_samples) - 1, n_examples).round().astype(int).tolist()
    examples = frozenset(spread) if n_examples else frozenset()
    vary = not cfg.dataset.get("image_size") and mixed_sizes(val_samples)
    return TrainingData(
        layout, train_samples, val_samples, train_loader, val_loader, sampler, examples, vary,
        costs,
    )  # fmt: skip


def _training_loader(
    train_set: SegmentationDataset,
    samples: list[Sample],
    sampler: EpochSampler,
    batch_size: int,
    runtime: Runtime,
) -> DataLoader:
    if batch_size > len(train_set):  # works, but rarely what was meant: say so
        print(
            f"note: trainer.batch_size={batch_size} is larger than the {len(train_set)} training "
            f"images; each epoch is one batch of {len(train_set)}"
        )
    return DataLoader(
        MarkBadFiles(SeededSamples(train_set), samples),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drops_last(len(sampler), batch_size),
        collate_fn=collate_marking_bad,
        **loader_settings(runtime),
    )


def _checked_store(
    cfg: DictConfig, layout: Layout, samples: list[Sample], processes: Processes
) -> tuple[PreprocessedStore | None, dict[str, float]]:
    """The check of the samples' files, then the preprocessed cache of them (dataset.cache),
    built where missing; the first process prints its start line (hits, misses, size).
    Returns the store and the seconds each took."""
    started = time.perf_counter()
    # Files whose cache entry was built after they passed the full check, unchanged since,
    # are not read again to check them.
    trusted = checked_samples(cfg.dataset, layout, samples) if layout.check_files else set()
    layout.check([s for s in samples if s not in trusted])
    checked = time.perf_counter()
    store, line = open_store(
        cfg.dataset, layout, samples, resize_step(cfg.dataset),
        desc="caching images" if processes.is_main else None, checked=layout.check_files,
    )  # fmt: skip
    if line and processes.is_main:
        print(line)
    return store, {"file check": checked - started, "data cache": time.perf_counter() - checked}


def _check_unmonitored(cfg: DictConfig) -> None:
    """A run without validation may watch a val/ metric only with dataset.fold=all, and only
    where nothing depends on it: it then keeps last.pt alone (no best.pt), as a final model
    trained on every image should."""
    trainer = cfg.trainer
    if str(cfg.dataset.fold) != "all" or cfg.dataset.folds is None:
        raise UnetError(
            f"trainer.monitor={trainer.monitor} needs a validation split, but "
            "dataset.validation_size is 0; set trainer.monitor=train/loss trainer.monitor_mode=min"
        )
    target = str(cfg.scheduler.get("factory", {}).get("_target_", ""))
    uses = []
    if trainer.early_stopping.patience is not None:
        uses.append("early stopping (trainer.early_stopping.patience)")
    if target.endswith("ReduceLROnPlateau"):
        uses.append("the plateau scheduler (scheduler=plateau)")
    if uses:
        raise UnetError(
            f"dataset.fold=all trains on every image and has no validation split, so "
            f"trainer.monitor={trainer.monitor} has no value for {' and '.join(uses)}. Train "
            "the final model for a fixed number of epochs (the folds' best epoch is a good "
            "choice) with trainer.early_stopping.patience=null and a fixed schedule, or set "
            "trainer.monitor=train/loss trainer.monitor_mode=min."
        )


def _validation_loader(
    cfg: DictConfig, val_set: SegmentationDataset, runtime: Runtime, processes: Processes
) -> DataLoader:
    """This process's contiguous block of whole validation batches, in split order."""
    val_samples = val_set.samples
    # Whole large images (e.g. 1500x1500 tiles) validate one at a time.
    val_batch = int(cfg.dataset.validation_batch_size or cfg.trainer.batch_size)
    mine = processes.shard(len(val_set), val_batch)
    return DataLoader(
        MarkBadFiles(Subset(val_set, mine), [val_samples[i] for i in mine]),
        batch_size=val_batch,
        collate_fn=collate_marking_bad,
        **loader_settings(runtime),
    )
