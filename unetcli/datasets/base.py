"""What every dataset provides: its samples, its split and how its masks decode.

A dataset is a YAML file in conf/dataset/ whose `layout` node builds one of
these classes. The training code only talks to this interface, so a new
on-disk layout is one small subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.datasets.io import read_image, read_mask
from unetcli.errors import UnetError


@dataclass(frozen=True)
class Sample:
    """One image, its mask if known, and the group it must share a split with."""

    image: Path
    mask: Path | None
    group: str
    # The name written to a submission (Carvana: the image file name).
    name: str


def grouped_split(
    samples: list[Sample], validation_size: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split samples into (train, validation) by group, seeded.

    Whole groups move together (Carvana: the 16 views of one car), so no object
    is seen in training and then scored in validation.
    """
    if not 0 <= validation_size < 1:
        raise UnetError(f"dataset.validation_size must be in [0, 1), got {validation_size}")
    groups = sorted({s.group for s in samples})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = int(round(len(groups) * validation_size))
    if validation_size > 0:
        n_val = min(max(n_val, 1), len(groups) - 1)
    val_groups = {groups[i] for i in order[:n_val]}
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


class Layout:
    """Base class: a dataset folder (`root`) and how to read it.

    Subclasses implement `labelled_samples` (the pool that is split into
    train and validation) and `test_samples` (in submission order).
    """

    #: Number of model input channels the images are read with.
    channels: int = 3

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- what a subclass provides -------------------------------------------------
    def labelled_samples(self) -> list[Sample]:
        raise NotImplementedError

    def test_samples(self) -> list[Sample]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the data available (generate it, or check it is there); called before use."""
        if not self.root.is_dir():
            raise UnetError(
                f"dataset folder {self.root} does not exist. Run `unet download` with the same "
                "dataset=..., or point dataset.root=PATH at your copy."
            )

    def check(self, samples: list[Sample]) -> None:
        """Stop before training if samples cannot be used; raise UnetError listing them.

        The base class checks that every mask file exists, so a missing mask is
        reported up front rather than in the middle of an epoch.
        """
        missing = [s.mask for s in samples if s.mask is not None and not s.mask.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:5])
            raise UnetError(
                f"{len(missing)} image(s) in {self.root} have no mask file, e.g. {shown}. "
                "Add the masks or remove those images."
            )

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        """Turn a mask file's pixels into class indices (binary by default: non-zero is 1)."""
        return (raw > 0).astype(np.uint8)

    # --- shared behaviour ---------------------------------------------------------
    def split(self, validation_size: float, seed: int) -> tuple[list[Sample], list[Sample]]:
        """(train, validation) samples; grouped and seeded unless the dataset has its own."""
        return grouped_split(self.labelled_samples(), validation_size, seed)

    def read_image(self, path: Path) -> np.ndarray:
        return read_image(path, self.channels)

    def read_mask(self, path: Path) -> np.ndarray:
        return self.decode_mask(read_mask(path))

    def require_images(self, samples: list[Sample], folder: Path) -> list[Sample]:
        if not samples:
            raise UnetError(
                f"no images found in {folder}. Check dataset.root (now {self.root}) or run "
                "`unet download` with the same dataset=..."
            )
        return samples
