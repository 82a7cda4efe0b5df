"""The Carvana Image Masking Challenge layout.

train/<car>_<nn>.jpg with train_masks/<car>_<nn>_mask.gif (0/1), test/*.jpg,
and sample_submission.csv fixing the order of the submission's rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.io import list_images


def car_id(stem: str) -> str:
    """The car (group) of an image: the part before the view number `_nn`."""
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


class CarvanaLayout(Layout):
    """Carvana's folders; masks are GIFs named `<stem>_mask.gif`."""

    def __init__(
        self, root: str | Path, mask_folder_suffix: str = "_masks", check_files: bool = True
    ) -> None:
        super().__init__(root, check_files)
        self.mask_folder_suffix = mask_folder_suffix

    def _samples(self, folder: str, with_masks: bool) -> list[Sample]:
        image_dir = self.root / folder
        mask_dir = self.root / f"{folder}{self.mask_folder_suffix}"
        images = list_images(image_dir) if image_dir.is_dir() else []
        return [
            Sample(
                image=path,
                mask=(mask_dir / f"{path.stem}_mask.gif") if with_masks else None,
                group=car_id(path.stem),
                name=path.name,
            )
            for path in images
        ]

    def labelled_samples(self) -> list[Sample]:
        return self.require_images(self._samples("train", True), self.root / "train")

    def held_out_samples(self) -> list[Sample]:
        has_masks = (self.root / f"test{self.mask_folder_suffix}").is_dir()
        samples = self.require_images(self._samples("test", has_masks), self.root / "test")
        return _in_submission_order(samples, self.root / "sample_submission.csv")


def _in_submission_order(samples: list[Sample], sample_csv: Path) -> list[Sample]:
    """Order samples as sample_submission.csv lists them; unlisted ones follow by name."""
    if not sample_csv.is_file():
        return samples
    with sample_csv.open(newline="") as f:
        order = {row["img"]: i for i, row in enumerate(csv.DictReader(f))}
    return sorted(samples, key=lambda s: (order.get(s.name, len(order)), s.name))
