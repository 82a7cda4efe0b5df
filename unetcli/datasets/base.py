"""What every dataset provides: its samples, its split and how its masks decode.

A dataset is a YAML file in conf/dataset/ whose `layout` node builds one of
these classes. The training code only talks to this interface, so a new
on-disk layout is one small subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.datasets.file_checks import check_samples
from unetcli.datasets.io import read_image, read_mask
from unetcli.errors import UnetError

#: Folder inside dataset.root where `unet download` keeps its archives, staging
#: area and manifest; nothing of the user's is ever put there.
DOWNLOAD_DIR = ".unet-download"
#: Present while `unet download` moves unpacked files into dataset.root; a
#: dataset with this file is incomplete and is refused until the download is rerun.
MOVING_MARKER = "moving.json"


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
    train and validation) and `held_out_samples` (in submission order).
    """

    #: Number of model input channels the images are read with.
    channels: int = 3
    #: The mask value that marks pixels to leave out (dataset.ignore_index); decoding
    #: keeps it as it is, so losses and metrics can find it. Layouts that read it
    #: from their config set it in their constructor.
    ignore_index: int | None = None

    def __init__(self, root: str | Path, check_files: bool = True) -> None:
        # Constructors must not touch the disk: `unet download` builds the layout
        # before the files exist.
        self.root = Path(root)
        self.check_files = bool(check_files)

    # --- what a subclass provides -------------------------------------------------
    def labelled_samples(self) -> list[Sample]:
        raise NotImplementedError

    def held_out_samples(self) -> list[Sample]:
        raise NotImplementedError

    def known_samples(self) -> list[Sample]:
        """Every sample whose mask lives in the dataset's mask folders (for orphan masks)."""
        return self.labelled_samples()

    def prepare(self) -> None:
        """Make the data available (generate it, or check it is there); called before use."""
        if not self.root.is_dir():
            raise UnetError(
                f"dataset folder {self.root} does not exist. Run `unet download` with the same "
                "dataset=..., or point dataset.root=PATH at your copy."
            )
        if (self.root / DOWNLOAD_DIR / MOVING_MARKER).is_file():
            raise UnetError(
                f"an earlier `unet download` into {self.root} stopped while moving files into "
                "place, so the dataset is incomplete. Run `unet download` with the same "
                "dataset=... again to finish it."
            )

    def check(self, samples: list[Sample]) -> None:
        """Stop before training if samples cannot be used; raise UnetError listing them.

        Reports images without masks, masks without images, unreadable files,
        masks whose size differs from their image and mask values the dataset
        does not declare, so bad data stops the run before the first epoch
        rather than in the middle of one (see checks.py). `check_files=false`
        in the layout's config leaves only the cheap test for missing masks.
        """
        check_samples(self, samples, full=self.check_files)

    def mask_files(self, sample: Sample) -> list[Path]:
        """The files a sample's mask is made of (one, except for e.g. one mask per lung)."""
        return [] if sample.mask is None else [sample.mask]

    def image_files(self, path: Path) -> list[Path]:
        """The files one image is read from (one, except for one file per channel)."""
        return [path]

    def mask_folders(self) -> list[Path]:
        """Folders whose image files must all belong to a sample (checked for orphan masks).

        Empty: the folders of the files `mask_files` names.
        """
        return []

    def read_mask_raw(self, path: Path) -> np.ndarray:
        """A mask file's pixels as stored (H, W) or (H, W, 3), before decoding."""
        return read_mask(path)

    def mask_value_problem(self, raw: np.ndarray) -> str | None:
        """Describe values in a raw mask that this dataset does not declare, else None.

        The default declares binary masks: 0 and one foreground value (0/1, 0/255),
        plus the ignore_index value where one is set.
        """
        values = distinct_values(raw)
        foreground = [v for v in values if v not in (0, self.ignore_index)]
        if len(foreground) <= 1 and all(v in (1, 255) for v in foreground):
            return None
        return f"values {_some(values)} (expected 0/1 or 0/255)"

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        """Turn a mask file's pixels into class indices (binary by default: non-zero is 1)."""
        return decode_binary(raw, 0, self.ignore_index)

    def inventory(self) -> dict[str, int]:
        """Counts of what is present, raising UnetError if the labelled pool is incomplete.

        `unet download` calls this on the unpacked files before moving them into
        dataset.root, so an archive that lacks a folder is never installed.
        """
        samples = self.labelled_samples()
        missing = [f for s in samples for f in self.mask_files(s) if not f.is_file()]
        if missing:
            raise UnetError(
                f"{len(missing)} of {len(samples)} images in {self.root} have no mask, e.g. "
                f"{missing[0]}"
            )
        counts = {"labelled": len(samples)}
        try:
            counts["test"] = len(self.held_out_samples())
        except (UnetError, NotImplementedError):
            counts["test"] = 0
        return counts

    # --- shared behaviour ---------------------------------------------------------
    def split(self, validation_size: float, seed: int) -> tuple[list[Sample], list[Sample]]:
        """(train, validation) samples; grouped and seeded unless the dataset has its own."""
        return grouped_split(self.labelled_samples(), validation_size, seed)

    def fold_pool(self) -> list[Sample]:
        """The images `dataset.folds` divides into folds (see unetcli/datasets/folds.py)."""
        return self.labelled_samples()

    def read_image(self, path: Path) -> np.ndarray:
        return read_image(path, self.channels)

    def read_mask(self, path: Path) -> np.ndarray:
        return self.decode_mask(self.read_mask_raw(path))

    def require_images(self, samples: list[Sample], folder: Path) -> list[Sample]:
        if not samples:
            raise UnetError(
                f"no images found in {folder}. Check dataset.root (now {self.root}) or run "
                "`unet download` with the same dataset=..."
            )
        return samples


def decode_binary(raw: np.ndarray, cut: float, ignore_index: int | None) -> np.ndarray:
    """A binary mask as 0/1 (values > cut are 1), keeping ignore_index pixels as they are.

    Without the exception every non-zero value would be foreground, and a
    255 "not annotated" would silently become object.
    """
    wide = ignore_index is not None and ignore_index > 255
    out = (raw > cut).astype(np.uint16 if wide else np.uint8)
    if ignore_index is not None:
        out[raw == ignore_index] = ignore_index
    return out


def distinct_values(raw: np.ndarray) -> list[int]:
    """The distinct pixel values of a single-channel mask, fast for 8-bit ones."""
    if raw.dtype == np.uint8:
        return np.flatnonzero(np.bincount(raw.ravel(), minlength=256)).tolist()
    return np.unique(raw).tolist()


def _some(values: list[int], limit: int = 6) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def find_folder(root: Path, is_base, max_depth: int = 4) -> Path | None:
    """The shallowest folder under `root` (root included) for which `is_base(folder)` holds.

    Lets a layout find its files whether dataset.root holds them directly or an
    archive unpacked them a few folders down (e.g. Montgomery/MontgomerySet/).
    """
    level = [root]
    for _ in range(max_depth + 1):
        found = sorted(p for p in level if is_base(p))
        if found:
            return found[0]
        level = sorted(c for p in level if p.is_dir() for c in p.iterdir() if c.is_dir())
        level = [c for c in level if not c.name.startswith(".")]
    return None
