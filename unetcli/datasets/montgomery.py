"""The Montgomery County chest X-ray set (lung segmentation).

`CXR_png/MCUCXR_####_{0,1}.png` with one mask per lung under the same name in
`ManualMask/leftMask/` and `ManualMask/rightMask/`; the target is their union.
Found in dataset.root or a few folders below it (the Kaggle archive nests it as
`Montgomery/MontgomerySet/`). There is no official split: a fixed, seeded share
of the images is held out as the test set (what `unet predict` segments), and
the rest is split into train and validation by dataset.validation_size and the
run's seed.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from unetcli.datasets.base import Layout, Sample, find_folder, grouped_split
from unetcli.datasets.io import list_images
from unetcli.errors import UnetError

LUNGS = ("leftMask", "rightMask")


def is_montgomery_folder(folder: Path) -> bool:
    return (folder / "CXR_png").is_dir() and (folder / "ManualMask").is_dir()


class MontgomeryLayout(Layout):
    """Grayscale X-rays with the two lung masks merged into one binary mask."""

    def __init__(
        self,
        root: str | Path,
        channels: int = 1,
        test_size: float = 0.1,
        test_seed: int = 0,
        check_files: bool = True,
    ) -> None:
        super().__init__(root, check_files)
        if int(channels) not in (1, 3):
            raise UnetError(
                f"dataset.in_channels must be 1 (grayscale) or 3 (the gray replicated) for "
                f"montgomery, not {channels}"
            )
        # 3: the gray image is replicated into three channels (OpenCV's colour read).
        self.channels = int(channels)
        self.test_size = float(test_size)
        self.test_seed = int(test_seed)

    @cached_property
    def base(self) -> Path:
        found = find_folder(self.root, is_montgomery_folder, max_depth=4)
        if found is None:
            raise UnetError(
                f"no folder with CXR_png/ and ManualMask/ found in {self.root} (nor up to four "
                "folders below it). Run `unet download dataset=montgomery` or point dataset.root "
                "at the MontgomerySet folder."
            )
        return found

    def all_samples(self) -> list[Sample]:
        folder = self.base / "CXR_png"
        samples = [
            Sample(
                image=p,
                mask=self.base / "ManualMask" / LUNGS[0] / p.name,
                group=p.stem,
                name=p.name,
            )
            for p in list_images(folder)
        ]
        return self.require_images(samples, folder)

    def _held_out(self) -> tuple[list[Sample], list[Sample]]:
        """(labelled pool, test): the test share is fixed by test_seed, not the run's seed."""
        if self.test_size <= 0:
            return self.all_samples(), []
        pool, test = grouped_split(self.all_samples(), self.test_size, self.test_seed)
        return pool, test

    def labelled_samples(self) -> list[Sample]:
        return self._held_out()[0]

    def held_out_samples(self) -> list[Sample]:
        return self._held_out()[1]

    def known_samples(self) -> list[Sample]:
        return self.all_samples()

    def mask_files(self, sample: Sample) -> list[Path]:
        if sample.mask is None:
            return []
        name = sample.mask.name
        return [self.base / "ManualMask" / lung / name for lung in LUNGS]

    def read_mask(self, path: Path) -> np.ndarray:
        left = self.read_mask_raw(path)
        right = self.read_mask_raw(path.parent.parent / LUNGS[1] / path.name)
        if left.shape != right.shape:
            raise UnetError(
                f"the lung masks of {path.name} differ in size ({left.shape} in {LUNGS[0]}, "
                f"{right.shape} in {LUNGS[1]}); replace one of them"
            )
        return ((left > 0) | (right > 0)).astype(np.uint8)

    def inventory(self) -> dict[str, int]:
        samples = self.all_samples()
        missing = [f for s in samples for f in self.mask_files(s) if not f.is_file()]
        if missing:
            raise UnetError(
                f"{len(missing)} lung mask(s) are missing in {self.base / 'ManualMask'}, e.g. "
                f"{missing[0]}"
            )
        return {"images": len(samples)}
