"""A user's own data: `images/` and masks with matching file stems, optional `test/`.

Images: png, jpg, tif, bmp, gif; 8 or 16 bit or float, any number of channels
(TIFF stacks through unetcli.core.tiff), or one folder per channel
(`channel_folders: [red, green, blue, nir]`, each file single-channel, named like
its mask). Masks are read according to the dataset's declaration:
- binary (num_classes 1): `masks/`, 0 is background and one other value is
  foreground (0/1, 0/255, 0/65535); `threshold: T` instead takes every value
  > T as foreground and allows any values (lossy JPEG masks, instance labels);
- multiclass (num_classes K > 1): `masks/`, pixel values are class indices
  0..K-1; or `class_csv`: RGB colours listed in a `name,r,g,b` table, row
  order = class;
- multilabel (task multilabel, num_classes C): one folder per class,
  `class_folders: [a, b, ...]`, each holding binary masks (as above) of the
  images where that class occurs. An image without a file in a class folder
  does not show that class (its plane is empty), so a class that occurs in
  few images needs few files. Classes may overlap.

Pixels equal to dataset.ignore_index (e.g. 255) are kept as they are, and
losses and metrics leave them out. With ignore_index 255 a binary mask marks
objects with another non-zero value (e.g. 1): 255 then means "not labelled",
not "object".
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from unetcli.core.tiff import stack_planes
from unetcli.datasets.base import Layout, Sample, _some, decode_binary, distinct_values
from unetcli.datasets.colours import ClassTable, read_rgb_mask
from unetcli.datasets.file_checks import image_size
from unetcli.datasets.io import list_images, read_image
from unetcli.errors import UnetError


class FolderLayout(Layout):
    """images/<stem>.* with masks/<stem><mask_suffix>.* (or one folder per class), split by stem."""

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
        task: str = "auto",
        class_folders: list[str] | None = None,
        ignore_index: int | None = None,
        palette: bool = False,
        mask_values: list[int] | None = None,
        group_pattern: str | None = None,
        channel_folders: list[str] | None = None,
    ) -> None:
        super().__init__(root, check_files)
        self.channels = int(channels)
        self.channel_folders = [str(f) for f in channel_folders] if channel_folders else None
        _check_channels(self.channels, self.channel_folders)
        self.num_classes = int(num_classes)
        self.images, self.masks, self.test = images, masks, test
        self.mask_suffix = mask_suffix or ""
        self.class_csv = class_csv
        self.threshold = None if threshold is None else float(threshold)
        self.class_folders = [str(f) for f in class_folders] if class_folders else None
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.palette = bool(palette)
        self.mask_values = [int(v) for v in mask_values] if mask_values else None
        self.group_pattern = re.compile(group_pattern) if group_pattern else None
        _check_declaration(str(task or "auto"), self.num_classes, self.class_folders, class_csv)

    @property
    def multilabel(self) -> bool:
        return self.class_folders is not None

    @cached_property
    def table(self) -> ClassTable | None:
        if not self.class_csv:
            return None
        path = Path(self.class_csv)
        path = path if path.is_absolute() else self.root / path
        table = ClassTable.read(path)
        table.check_classes(self.num_classes, path)
        return table

    @property
    def image_folder(self) -> str:
        """The folder whose files name the samples: images/, or the first channel folder."""
        return self.channel_folders[0] if self.channel_folders else self.images

    def prepare(self) -> None:
        super().prepare()
        for folder in self.channel_folders or []:
            if not (self.root / folder).is_dir():
                raise UnetError(
                    f"dataset.layout.channel_folders names {folder}, which is not a folder in "
                    f"{self.root}; each channel needs a folder of single-channel images named "
                    "like the masks"
                )
        if not (self.root / self.image_folder).is_dir():
            masks = ", ".join(f"{f}/" for f in self.class_folders or [self.masks])
            raise UnetError(
                f"{self.root} has no {self.images}/ folder. dataset=folder expects "
                f"dataset.root to hold {self.images}/ and {masks} with matching file names "
                "(and optionally test/)."
            )
        for folder in self.class_folders or []:
            if not (self.root / folder).is_dir():
                raise UnetError(
                    f"dataset.layout.class_folders names {folder}, which is not a folder in "
                    f"{self.root}; create it (it may be empty) or fix the list"
                )
        _ = self.table  # a bad class table stops here, before anything else

    def _masks_by_stem(self, name: str) -> dict[str, Path]:
        """Mask files of the folder `name` (relative to root) by the stem of their image."""
        folder = self.root / name
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

    @cached_property
    def _class_masks(self) -> list[dict[str, Path]]:
        """Per class folder, its mask files by image stem (multilabel tasks)."""
        return [self._masks_by_stem(folder) for folder in self.class_folders or []]

    def labelled_samples(self) -> list[Sample]:
        folder = self.root / self.image_folder
        paths = list_images(folder) if folder.is_dir() else []
        # Multilabel samples name their mask in the first class folder, whether it exists
        # or not: read_mask gathers the image's file (if any) from every class folder.
        mask_dir = self.root / (self.class_folders[0] if self.multilabel else self.masks)
        indexes = self._class_masks if self.multilabel else [self._masks_by_stem(self.masks)]
        found = indexes[0]
        samples = [
            Sample(
                image=path,
                # A missing mask keeps an expected name, so the check can report it.
                mask=found.get(path.stem, mask_dir / f"{path.stem}{self.mask_suffix}.png"),
                group=self._group(path.stem),
                name=path.name,
            )
            for path in paths
        ]
        samples = self.require_images(samples, folder)
        stems = {s.image.stem for s in samples}
        for name, masks in zip(self.class_folders or [self.masks], indexes):
            if masks and not stems & set(masks):
                raise UnetError(
                    f"no file in {self.root / name} has the name of an image in {folder} "
                    f"(e.g. image {samples[0].image.name}, mask {next(iter(masks.values())).name})"
                    ". Masks must share the image's file stem; masks named like a_mask.png need "
                    "dataset.layout.mask_suffix=_mask."
                )
        return samples

    def _group(self, stem: str) -> str:
        """The split group: the stem, or the original's stem for a copy (group_pattern)."""
        found = self.group_pattern.fullmatch(stem) if self.group_pattern else None
        return found.group(1) if found else stem

    def held_out_samples(self) -> list[Sample]:
        folder = self.root / self.test
        if self.channel_folders:  # test/<channel>/<stem>.*
            folder = folder / self.channel_folders[0]
        images = list_images(folder) if folder.is_dir() else []
        samples = [Sample(p, None, p.stem, p.name) for p in images]
        return self.require_images(samples, folder)

    def _stem(self, mask_path: Path) -> str:
        stem = mask_path.stem
        return stem[: -len(self.mask_suffix)] if self.mask_suffix else stem

    def mask_files(self, sample: Sample) -> list[Path]:
        if sample.mask is None or not self.multilabel:
            return super().mask_files(sample)
        stem = self._stem(sample.mask)
        return [masks[stem] for masks in self._class_masks if stem in masks]

    def mask_folders(self) -> list[Path]:
        return [self.root / f for f in self.class_folders or []]

    def read_mask(self, path: Path) -> np.ndarray:
        """(H, W) class indices, or (C, H, W) 0/1 planes from the class folders (multilabel)."""
        if not self.multilabel:
            return super().read_mask(path)
        stem = self._stem(path)
        files = [masks.get(stem) for masks in self._class_masks]
        planes = [None if f is None else self.decode_mask(self.read_mask_raw(f)) for f in files]
        shapes = {p.shape for p in planes if p is not None}
        if len(shapes) > 1:
            raise UnetError(
                f"the class masks of image {stem} differ in size ({sorted(shapes)}): "
                f"{', '.join(str(f) for f in files if f is not None)}; masks must match the image"
            )
        shape = shapes.pop() if shapes else self._image_shape(stem)
        dtype = next((p.dtype for p in planes if p is not None), np.uint8)
        return np.stack([np.zeros(shape, dtype) if p is None else p for p in planes])

    @cached_property
    def _images_by_stem(self) -> dict[str, Path]:
        return {p.stem: p for p in list_images(self.root / self.image_folder)}

    def _image_shape(self, stem: str) -> tuple[int, int]:
        """(height, width) of the image with this stem, from its header (no class masks)."""
        path = self._images_by_stem.get(stem)
        size = None if path is None else image_size(path)
        if size is None:
            raise UnetError(
                f"cannot read the image of stem {stem} in {self.root / self.image_folder}; replace "
                "or remove it"
            )
        return size

    def image_files(self, path: Path) -> list[Path]:
        """The files of one image: itself, or its file in every channel folder (same stem).

        `path` is the sample's image, in the first channel folder; the others are found by
        stem beside it (labelled: root/<channel>/, test: root/test/<channel>/).
        """
        if not self.channel_folders:
            return [path]
        base = path.parent.parent
        files = [path]
        for folder in self.channel_folders[1:]:
            same = base / folder / path.name
            found = same if same.is_file() else self._stems(base / folder).get(path.stem, same)
            files.append(found)
        return files

    def _stems(self, folder: Path) -> dict[str, Path]:
        """The image files of a channel folder by stem (listed once per folder)."""
        cache = self.__dict__.setdefault("_stem_index", {})
        if folder not in cache:
            files = list_images(folder) if folder.is_dir() else []
            cache[folder] = {p.stem: p for p in files}
        return cache[folder]

    def read_image(self, path: Path) -> np.ndarray:
        """(H, W, C) in the stored dtype; channel folders stacked in their listed order."""
        if not self.channel_folders:
            return super().read_image(path)
        planes = []
        for file in self.image_files(path):
            if not file.is_file():
                raise UnetError(
                    f"image {path.name} has no file in channel folder {file.parent}; every "
                    "channel folder needs a file of each image's stem"
                )
            planes.append(read_image(file, 1))
        return stack_planes(planes, path.stem)

    def read_mask_raw(self, path: Path) -> np.ndarray:
        if self.palette:
            return read_palette_indices(path)
        return super().read_mask_raw(path) if self.table is None else read_rgb_mask(path)

    def decode_mask(self, raw: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table.decode(raw)[0]
        if self.mask_values is not None:
            raw = self._value_lut()[raw]
        if self.num_classes == 1 or self.multilabel:
            cut = 0 if self.threshold is None else self.threshold
            return decode_binary(raw, cut, self.ignore_index)
        return raw  # class indices as stored (8 or 16 bit); ignore_index among them

    def mask_value_problem(self, raw: np.ndarray) -> str | None:
        if self.table is not None:
            unknown = self.table.unknown_colours(raw)
            if not unknown:
                return None
            shown = ", ".join(f"({r},{g},{b})" for r, g, b in unknown[:4])
            return f"colours {shown} that {self.class_csv} does not list"
        if raw.ndim == 3:
            return "colour pixels; give dataset.layout.class_csv=FILE to decode colours"
        if self.mask_values is not None:
            listed = {*self.mask_values, self.ignore_index}
            unknown = [v for v in distinct_values(raw) if v not in listed]
            return (
                f"values {_some(unknown)} that dataset.layout.mask_values does not list"
                if (unknown)
                else None
            )
        values = [v for v in distinct_values(raw) if v != self.ignore_index]
        if self.num_classes == 1 or self.multilabel:
            if self.threshold is not None or len([v for v in values if v != 0]) <= 1:
                return None
            return (
                f"values {_some(values)} (a binary mask holds 0 and one foreground value; "
                "set dataset.layout.threshold=T to take every value > T as foreground, "
                "dataset.num_classes=K for class indices, or dataset.ignore_index for a value "
                "that marks unlabelled pixels)"
            )
        outside = [v for v in values if v >= self.num_classes]
        if not outside:
            return None
        hint = (
            "; 0/255 masks are binary: set dataset.num_classes=1 (or dataset.ignore_index=255 "
            "if 255 marks unlabelled pixels)"
            if outside == [255]
            else f"; class indices must be 0..{self.num_classes - 1}"
        )
        return f"values {_some(outside)} outside 0..{self.num_classes - 1}{hint}"

    def _value_lut(self) -> np.ndarray:
        """Stored value -> class index (position in mask_values); ignore_index kept as it is."""
        size = 65536 if max([*self.mask_values, self.ignore_index or 0]) > 255 else 256
        lut = np.zeros(size, np.uint16 if size > 256 else np.uint8)
        lut[self.mask_values] = np.arange(len(self.mask_values))
        if self.ignore_index is not None:
            lut[self.ignore_index] = self.ignore_index
        return lut


def read_palette_indices(path: Path) -> np.ndarray:
    """A palette PNG's pixels as palette indices (H, W) uint8: the class numbers it stores.

    OpenCV turns palette PNGs into colours (and grey reads into luminance), which
    loses the indices Pascal VOC-style masks keep their classes in.
    """
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                raise UnetError(
                    f"mask {path} is not a palette PNG (mode {image.mode}); "
                    "dataset.layout.palette=true reads palette masks only: set it to false"
                )
            return np.array(image)
    except (UnidentifiedImageError, OSError) as err:
        raise UnetError(
            f"cannot read mask {path}: the file is missing, empty or not an image Pillow can "
            "decode. Replace or remove it."
        ) from err


def _check_channels(channels: int, channel_folders: list[str] | None) -> None:
    """dataset.in_channels against dataset.layout.channel_folders (no disk access)."""
    if channels < 1:
        raise UnetError(f"dataset.in_channels must be at least 1, not {channels}")
    if channel_folders is not None and len(channel_folders) != channels:
        raise UnetError(
            f"dataset.layout.channel_folders lists {len(channel_folders)} folders (one per "
            f"channel) but dataset.in_channels is {channels}; set "
            f"dataset.in_channels={len(channel_folders)}"
        )


def _check_declaration(
    task: str, num_classes: int, class_folders: list[str] | None, class_csv: str | None
) -> None:
    """dataset.task=multilabel and dataset.layout.class_folders go together (no disk access)."""
    if task == "multilabel" and class_folders is None:
        raise UnetError(
            "dataset.task=multilabel with dataset=folder reads one mask folder per class: set "
            "dataset.layout.class_folders=[folder1,folder2,...] (one per class, "
            f"dataset.num_classes={num_classes} of them)"
        )
    if class_folders is None:
        return
    if task != "multilabel":
        raise UnetError(
            "dataset.layout.class_folders is for multilabel tasks (classes that may overlap, one "
            "mask folder each); add dataset.task=multilabel, or give one class-index mask "
            "folder (dataset.layout.masks) for exclusive classes"
        )
    if len(class_folders) != num_classes:
        raise UnetError(
            f"dataset.layout.class_folders lists {len(class_folders)} folders but "
            f"dataset.num_classes is {num_classes}; set dataset.num_classes={len(class_folders)}"
        )
    if class_csv:
        raise UnetError(
            "dataset.layout.class_csv (colour masks) and dataset.layout.class_folders (one binary "
            "mask folder per class) exclude each other; keep one"
        )
