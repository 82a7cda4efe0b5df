"""Out-of-fold probabilities on disk: one compressed .npz per image and view.

`unet evaluate ensemble=... evaluate.save_probabilities=true` keeps
`<run>/probabilities/identity/<image>.npz` with `probs` (C, H, W) quantised to uint8
(p * 255, rounded), the true mask `truth` and the `fold` whose model predicted it; the
search adds `<run>/probabilities/<view>/<image>.npz` (`probs` only) for each TTA view it
tries. uint8 rather than float16: one byte a pixel, and a step of 1/255 = 0.004 is ten
times finer than the threshold grid (0.05), so no choice of the search moves; near-certain
pixels become runs of 0 and 255 that compress to almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.core.files import atomic_write
from unetcli.datasets.base import Sample
from unetcli.errors import UnetError
from unetcli.inference.engine import Finished

PROBABILITIES_DIR = "probabilities"
IDENTITY = "identity"


def quantise(probs: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)


def dequantise(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / 255.0


@dataclass(frozen=True)
class ProbabilityStore:
    """The probability files of one evaluate run folder."""

    run_dir: Path

    def path(self, view: str, name: str) -> Path:
        return Path(self.run_dir) / PROBABILITIES_DIR / view / f"{name}.npz"

    def save(
        self, view: str, name: str, probs: np.ndarray, truth: np.ndarray | None, fold: int
    ) -> None:
        """One image's probabilities (and, for the identity view, its mask and fold)."""
        path = self.path(view, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"probs": quantise(probs)}
        if truth is not None:
            arrays.update(truth=truth, fold=np.array(fold))
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays), what="probabilities")

    def names(self) -> list[str]:
        """The images with identity probabilities, sorted."""
        folder = Path(self.run_dir) / PROBABILITIES_DIR / IDENTITY
        names = sorted(p.name[: -len(".npz")] for p in folder.glob("*.npz"))
        if not names:
            raise UnetError(
                f"{folder} holds no probability files; the search needs the out-of-fold "
                "probabilities of `unet evaluate ensemble=... evaluate.save_probabilities=true`"
            )
        return names

    def has(self, view: str, name: str) -> bool:
        return self.path(view, name).is_file()

    def probs(self, view: str, name: str) -> np.ndarray:
        with np.load(self.path(view, name)) as data:
            return dequantise(data["probs"])

    def truth_and_fold(self, name: str) -> tuple[np.ndarray, int]:
        with np.load(self.path(IDENTITY, name)) as data:
            return data["truth"], int(data["fold"])


@dataclass(frozen=True)
class Saved:
    """Saves each image's probabilities of one `view` (its mask and fold too, for the
    identity view): a `Keep` of the scoring sink, or a sink of its own (views alone)."""

    store: ProbabilityStore
    view: str
    fold: int

    def __call__(self, sample: Sample, probs: np.ndarray, truth: np.ndarray | None) -> None:
        keep_truth = truth if self.view == IDENTITY else None
        self.store.save(self.view, sample.name, probs, keep_truth, self.fold)

    def finish(self, image: Finished) -> None:
        self(image.sample, image.probabilities, image.mask)

    def take(self, _result: None) -> None:
        pass
