"""A user's own data: `images/` and `masks/` with matching file stems, optional `test/`.

Any format OpenCV reads (png, jpg, tif, bmp, gif; 8 or 16 bit). Masks are read
according to the dataset's declaration:
- num_classes 1 (binary): 0 is background and one other value is foreground
  (0/1, 0/255, 0/65535); `threshold: T` instead takes every value > T as
  foreground and allows any values (lossy JPEG masks, instance labels);
- num_classes K > 1: pixel values are class indices 0..K-1;
- `class_csv`: RGB colours listed in a `name,r,g,b` table, row order = class.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from unetcli.datasets.base import Layout, Sample, _some, distinct_values
from unetcli.datasets.colours import ClassTable, read_rgb_mask
from unetcli.datasets.io import list_images
from unetcli.errors import UnetError


class FolderLayout(Layout):
    """images/<stem>.* with masks/<stem><mask_suffix>.*, split at random by stem."""

    def __init__(
        self,
        root: str | Path,
        num_classes: int = 1,
        channels: int = 3,
        images: str = "images",
        masks: str = "masks",
        test: str = "test",
        mask_suffix: str = "",
        class_csv: str | None = None,
        threshold: float | None = None,
        check_files: bool = True,
    ) -> None:
        super().__init__(root, check_files)
        if int(channels) not in (1, 3):
            raise UnetError(
                f"dataset.in_channels must be 1 or 3 for dataset=folder, not {channels}"
            )
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        self.images, self.masks, self.test = images, masks, test
        self.mask_suffix = mask_suffix or ""
        self.class_csv = class_csv
        self.threshold = None if threshold is None else float(threshold)

    @cached_property
    def table(self) -> ClassTable | None:
        if not self.class_csv:
            return None
        path = Path(self.class_csv)
        path = path if path.is_absolute() else self.root / path
        table = ClassTable.read(path)
        table.check_classes(self.num_classes, path)
        return table

    def prepare(self) -> None:
        super().prepare()
        if not (self.root / self.images).is_dir():
            raise UnetError(
                f"{self.root} has no {self.images}/ folder. dataset=folder expects "
                f"dataset.root to hold {self.images}/ and {self.masks}/ with matching file "
                "names (and optionally test/)."
            )
        _ = self.table  # a bad class table stops here, before anything else

    def _masks_by_stem(self) -> dict[str, Path]:
        folder = self.root / self.masks
        found: dict[str, Path] = {}
        for path in list_images(folder) if folder.is_dir() else []:
            stem = path.stem
            if self.mask_suffix:
                if not stem.endswith(self.mask_suffix):
                    continue
                stem = stem[: -len(self.mask_suffix)]
            if stem in found:
                raise UnetError(
                    f"two masks for the same image stem '{stem}': {found[stem]} and {path}; "
                    "keep one"
                )
            found[stem] = path
        return found

    def labelled_samples(self) -> list[Sample]:
        folder = self.root / self.images
        masks = self._masks_by_stem()
        expected = self.root / self.masks
        samples = [
            Sample(
                image=path,
                # A missing mask keeps an expected name, so the check can report it.
                mask=masks.get(path.stem, expected / f"{path.stem}{self.mask_suffix}.png"),
                group=path.stem,
                name=path.name,
            )
            for path in (list_images(folder) if folder.is_dir() else [])
        ]
        samples = self.require_images(samples, folder)
        if masks and not any(s.image.stem in masks for s in samples):
            raise UnetError(
                f"no file in {self.root / self.masks} has the name of an image in {folder} "
                f"(e.g. image {samples[0].image.name}, mask {next(iter(masks.values())).name}). "
                "Masks must share the image's file stem; masks named like a_mask.png need "
                "dataset.layout.mask_suffix=_mask."
            )
        return samples

    def test_samples(self) -> list[Sample]:
        folder = self.root / self.test
        images = list_images(folder) if folder.is_dir() else []
        samples = [Sample(p, None, p.stem, p.name) for p in images]
        return self.require_images(samples, folder)

    def read_mask_raw(self, path: Path) -> np.ndarray:
        return super().read_mask_raw(path) if self.table is None else read_rgb_mask(path)

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table.decode(raw)[0]
        if self.num_classes == 1:
            cut = 0 if self.threshold is None else self.threshold
            return (raw > cut).astype(np.uint8)
        return raw  # class indices as stored (8 or 16 bit)

    def mask_value_problem(self, raw: np.ndarray) -> str | None:
        if self.table is not None:
            unknown = self.table.unknown_colours(raw)
            if not unknown:
                return None
            shown = ", ".join(f"({r},{g},{b})" for r, g, b in unknown[:4])
            return f"colours {shown} that {self.class_csv} does not list"
        if raw.ndim == 3:
            return "colour pixels; give dataset.layout.class_csv=FILE to decode colours"
        values = distinct_values(raw)
        if self.num_classes == 1:
            if self.threshold is not None or len([v for v in values if v != 0]) <= 1:
                return None
            return (
                f"values {_some(values)} (a binary mask holds 0 and one foreground value; "
                "set dataset.layout.threshold=T to take every value > T as foreground, or "
                "dataset.num_classes=K for class indices)"
            )
        outside = [v for v in values if v >= self.num_classes]
        if not outside:
            return None
        hint = (
            "; 0/255 masks are binary: set dataset.num_classes=1"
            if outside == [255]
            else f"; class indices must be 0..{self.num_classes - 1}"
        )
        return f"values {_some(outside)} outside 0..{self.num_classes - 1}{hint}"
