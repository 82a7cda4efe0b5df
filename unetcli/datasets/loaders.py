"""DataLoaders of a run: its worker count, pinned memory, worker seeds and OpenCV threads."""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unetcli.core.hardware import Runtime


def make_loader(dataset: Dataset, batch_size: int, runtime: Runtime, **options: Any) -> DataLoader:
    """A DataLoader with the run's worker count and pinned memory; `options` are DataLoader's
    own (shuffle, generator, collate_fn, ...)."""
    return DataLoader(dataset, batch_size=batch_size, **options, **loader_settings(runtime))


def loader_settings(runtime: Runtime) -> dict[str, Any]:
    """The DataLoader keywords every loader of a run shares: workers, pinning, worker seeds."""
    workers = runtime.num_workers
    _opencv_one_thread()
    return {
        "num_workers": workers,
        "pin_memory": runtime.pin_memory,
        "persistent_workers": workers > 0,
        "worker_init_fn": _seed_worker,
    }


def _opencv_one_thread() -> None:
    """OpenCV computes with one thread in this process and so in the loader workers it forks.

    Workers must not take the cores the model computes on, and each would start an OpenCV
    pool as wide as the machine. It is set here, in the parent, before the workers fork:
    calling cv2.setNumThreads inside a forked worker can deadlock on the pool lock inherited
    from the parent (a worker hung so in this project's tests). With no workers the main
    process loads between steps, and OpenCV's pool (its threads wait actively after each
    call) then competes with torch's threads: one thread measured 2.7% faster epochs
    (unet_small, 96x128, 2 cores, alternated). It was also set only when a worker loader
    was built, so a run's OpenCV threads depended on whether the tuner had tried one.
    Where the main process needs parallel OpenCV work (predict's resize-back) it has its
    own thread pool.
    """
    cv2.setNumThreads(1)


def _seed_worker(worker_id: int) -> None:
    """Seed a loader worker from torch's per-worker seed (base seed + worker id), one thread.

    Each worker holds a copy of the dataset's transform with the same seed;
    without this every worker would replay the same augmentations. A worker
    computes with one torch thread (torch's own worker loop sets that too), so
    the workers do not take the cores the model computes on. OpenCV's thread
    count is not changed here: calling cv2.setNumThreads in a forked worker
    can deadlock on the pool lock inherited from the parent (a worker hung so
    in this project's tests).
    """
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    reseed = getattr(info.dataset, "reseed", None) if info is not None else None
    if reseed is not None:
        reseed(seed)
