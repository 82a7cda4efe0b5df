"""The one loop from images to per-image probabilities at their original size.

`unet predict`, `unet evaluate` (a checkpoint, and a fold ensemble out-of-fold), the recipe
search and export's verification all run their images through here. Three stages overlap so
that the model is the bottleneck: DataLoader workers read and transform images; the main
thread runs the `Predictor` (cover mode, TTA, ensemble averaging) on batches of one shape; a
thread pool maps each image's probabilities back to its original size and hands them to the
caller's `Sink`, whose results come back in input order on one thread (`OrderedWork`). Queues
are bounded, so memory stays flat however many images there are.

With several processes each takes a contiguous block of whole loader batches (`share`), so
that every image is predicted exactly as one process would predict it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from unetcli.core.console import progress_bar
from unetcli.core.hardware import varying_shapes
from unetcli.core.placement import Geometry, restore_size
from unetcli.datasets.base import Sample
from unetcli.datasets.loaders import make_loader
from unetcli.datasets.preprocessed import PreprocessedStore, open_for_inference
from unetcli.datasets.sizes import mixed_sizes
from unetcli.datasets.torch_dataset import resize_step
from unetcli.distributed.processes import Processes, SingleProcess
from unetcli.inference.dataset import InferenceDataset, collate_items, same_shape_groups
from unetcli.inference.ordered import OrderedWork
from unetcli.inference.predictor import Predictor
from unetcli.inference.transfer import stack_batch, to_host

R = TypeVar("R")


@dataclass(frozen=True)
class Finished:
    """One image done: its probabilities (C, H, W) float32 at its original size.

    `index` is its position in the samples given to `Engine.share`; `mask` is its true mask
    as stored, when the run reads masks.
    """

    index: int
    sample: Sample
    probabilities: np.ndarray
    mask: np.ndarray | None


class Sink(Protocol, Generic[R]):
    """What happens to each finished image: `finish` on a pool thread (threshold, encode,
    score, save), then `take` of its result on one thread, in input order (write a row,
    add to a report)."""

    def finish(self, image: Finished) -> R: ...

    def take(self, result: R) -> None: ...


@dataclass(frozen=True)
class Share:
    """One process's contiguous block of the samples: they start at `start`."""

    start: int
    samples: list[Sample]


class Engine:
    """Runs a `Predictor` over samples for a `Sink`; `progress` names the progress bar."""

    def __init__(
        self,
        predictor: Predictor,
        processes: Processes | None = None,
        progress: str | None = None,
    ) -> None:
        self.predictor = predictor
        self.processes = processes or SingleProcess()
        self.progress = progress if self.processes.is_main else None

    def share(self, samples: Sequence[Sample]) -> Share:
        """This process's block of whole loader batches (all of them in one process)."""
        block = self.processes.shard(len(samples), self.predictor.loader_batch)
        return Share(block.start, list(samples[block.start : block.stop]))

    def cached(self, samples: Sequence[Sample]) -> PreprocessedStore | None:
        """The data cache's store of `samples` where images go to the model resized to the
        training size (mode=resize; dataset.cache, see open_for_inference), else None."""
        first = self.predictor.first
        if self.predictor.options.mode != "resize" or not first.config.dataset.get("image_size"):
            return None
        resize = resize_step(first.config.dataset)
        store, line = open_for_inference(first.config.dataset, first.layout, samples, resize)
        if line and self.processes.is_main:
            print(line)
        return store

    def run(self, share: Share, sink: Sink, *, masks: bool = False, done: int = 0) -> None:
        """Predict `share` for `sink`; `masks` reads the true masks too.

        `done` images at the start of the share were finished by an earlier, interrupted
        run: they are skipped, and the run restarts at the batch boundary before them, so
        that every batch holds the same images as in an uninterrupted run (the same pixels).
        """
        predictor = self.predictor
        batch = predictor.loader_batch
        start = (done // batch) * batch
        samples = share.samples[start:]
        store = self.cached(samples)
        first = predictor.first
        dataset = InferenceDataset(first.layout, samples, predictor.transform(), masks, store)
        loader = make_loader(dataset, batch, predictor.runtime, collate_fn=collate_items)

        def finish(index: int, geometry: tuple, probs: np.ndarray, mask) -> object:
            full = restore_size(probs, Geometry.from_tuple(geometry))
            truth = None if mask is None else mask.numpy()
            return sink.finish(Finished(share.start + index, share.samples[index], full, truth))

        options = predictor.options
        pending = 2 * options.batch_size + 2 * options.threads
        with (
            OrderedWork(finish, sink.take, options.threads, pending) as work,
            progress_bar(total=len(samples), desc=self.progress) as bar,
            _autotuning(predictor, samples),
        ):
            for items in loader:
                for group in same_shape_groups(items):
                    images = stack_batch([item["image"] for item in group], predictor.runtime)
                    probs = to_host(predictor(images), predictor.runtime)
                    for item, one in zip(group, probs):
                        index = start + int(item["index"])
                        if index >= done:
                            work.submit(index, item["geometry"], one, item["mask"])
                    bar.update(len(group))


def _autotuning(predictor: Predictor, samples: Sequence[Sample]) -> AbstractContextManager:
    """cuDNN autotuning off while whole images of several sizes are predicted one shape
    after another (`mode=full`): each new shape would be autotuned again. Resized images,
    sliding windows and overlap tiles keep one shape and keep it on."""
    whole = predictor.options.mode == "full" and predictor.first.model.output_margin == 0
    return varying_shapes() if whole and mixed_sizes(samples) else nullcontext()
