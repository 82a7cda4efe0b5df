"""The Massachusetts Buildings layout (Kaggle dataset balraj98/massachusetts-buildings-dataset).

`label_class_dict.csv` beside `png/` and `tiff/`, each holding train, val and
test folders with `<split>_labels` beside them (images `.tiff`/`.png`, labels
`.tif`/`.png`, same stem). The dataset's own split is used (no random split),
and the RGB labels are decoded through the class table, so a table with more
colours is a multi-class task without code changes.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from unetcli.datasets.base import Layout, Sample, find_folder, grouped_split
from unetcli.datasets.colours import ClassTable, read_rgb_mask
from unetcli.datasets.io import list_images
from unetcli.errors import UnetError

SPLITS = ("train", "val", "test")


class BuildingsLayout(Layout):
    """Aerial tiles with RGB building labels, in the dataset's own train/val/test folders."""

    def __init__(
        self,
        root: str | Path,
        num_classes: int = 1,
        image_format: str = "auto",
        class_csv: str = "label_class_dict.csv",
        official_split: bool = True,
        check_files: bool = True,
    ) -> None:
        super().__init__(root, check_files)
        if image_format not in ("auto", "png", "tiff"):
            raise UnetError(
                f"dataset.layout.image_format must be auto, png or tiff, not {image_format}"
            )
        self.num_classes = int(num_classes)
        self.image_format = image_format
        self.class_csv = class_csv
        self.official_split = bool(official_split)

    # --- where the files are -----------------------------------------------------
    @cached_property
    def base(self) -> Path:
        """The folder holding the class table and png/ or tiff/ (dataset.root or below it)."""
        found = find_folder(
            self.root, lambda p: (p / "png").is_dir() or (p / "tiff").is_dir(), max_depth=3
        )
        if found is None:
            raise UnetError(
                f"no png/ or tiff/ folder found in {self.root} (nor up to three folders below "
                "it). Run `unet download dataset=massachusetts_buildings` or point dataset.root "
                "at the unpacked dataset."
            )
        return found

    @cached_property
    def format_dir(self) -> Path:
        choices = ("png", "tiff") if self.image_format == "auto" else (self.image_format,)
        for name in choices:
            if (self.base / name / "train").is_dir():
                return self.base / name
        raise UnetError(
            f"no {' or '.join(f'{c}/train' for c in choices)} folder in {self.base}; "
            "the dataset is incomplete. Run `unet download dataset=massachusetts_buildings` again."
        )

    @cached_property
    def table(self) -> ClassTable:
        path = Path(self.class_csv)
        path = path if path.is_absolute() else self.base / path
        table = ClassTable.read(path)
        table.check_classes(self.num_classes, path)
        return table

    def samples_of(self, split: str) -> list[Sample]:
        image_dir, label_dir = self.format_dir / split, self.format_dir / f"{split}_labels"
        images = list_images(image_dir) if image_dir.is_dir() else []
        labels = {p.stem: p for p in list_images(label_dir)} if label_dir.is_dir() else {}
        return [
            Sample(
                image=path,
                # A missing label keeps its expected name, so the check can name it.
                mask=labels.get(path.stem, label_dir / f"{path.stem}.tif"),
                group=path.stem,
                name=path.name,
            )
            for path in images
        ]

    # --- the Layout interface ----------------------------------------------------
    def labelled_samples(self) -> list[Sample]:
        samples = self.samples_of("train") + self.samples_of("val")
        return self.require_images(samples, self.format_dir / "train")

    def known_samples(self) -> list[Sample]:
        return self.labelled_samples() + self.samples_of("test")

    def held_out_samples(self) -> list[Sample]:
        return self.require_images(self.samples_of("test"), self.format_dir / "test")

    def split(self, validation_size: float, seed: int) -> tuple[list[Sample], list[Sample]]:
        """The dataset's own train and val folders (dataset.validation_size is not used).

        `dataset.layout.official_split=false` pools train and val and splits them
        by dataset.validation_size instead.
        """
        if not self.official_split:
            return grouped_split(self.labelled_samples(), validation_size, seed)
        train = self.require_images(self.samples_of("train"), self.format_dir / "train")
        return train, self.samples_of("val")

    def fold_pool(self) -> list[Sample]:
        """Train and val pooled, only where the official split is off: folds replace it."""
        if self.official_split:
            raise UnetError(
                "dataset.folds divides the labelled images into folds, but this dataset keeps "
                "its official train/val split (dataset.layout.official_split=true). Add "
                "dataset.layout.official_split=false to pool train and val into the folds, "
                "or drop dataset.folds to train on the official split."
            )
        return self.labelled_samples()

    def read_mask_raw(self, path: Path) -> np.ndarray:
        return read_rgb_mask(path)

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        return self.table.decode(raw)[0]

    def mask_value_problem(self, raw: np.ndarray) -> str | None:
        unknown = self.table.unknown_colours(raw)
        if not unknown:
            return None
        shown = ", ".join(f"({r},{g},{b})" for r, g, b in unknown[:4])
        return f"colours {shown} that {self.class_csv} does not list"

    def inventory(self) -> dict[str, int]:
        counts = {split: len(self.samples_of(split)) for split in SPLITS}
        missing = [s.mask for s in self.known_samples() if not s.mask.is_file()]
        if not counts["train"] or missing:
            raise UnetError(
                f"the Massachusetts Buildings files in {self.base} are incomplete: "
                f"{counts['train']} training images, {len(missing)} images without labels"
                + (f" (e.g. {missing[0]})" if missing else "")
            )
        _ = self.table  # reads and checks the class table
        return counts
