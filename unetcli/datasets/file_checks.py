"""The dataset check run before the first epoch.

A bad file found in the middle of epoch 3 costs the hours before it; found
here, it costs seconds. Everything wrong is collected and reported together
(the first few of each kind, and a count), so one run of `unet train` lists
what to fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from unetcli.core.cpus import usable_cores
from unetcli.core.tiff import fits, header, is_tiff
from unetcli.datasets.io import IMAGE_EXTENSIONS
from unetcli.errors import UnetError

if TYPE_CHECKING:
    from unetcli.datasets.base import Layout, Sample

#: Examples shown per kind of problem.
SHOWN = 3


@dataclass
class Problems:
    """What is wrong with a dataset, by kind; each entry is one line about one file."""

    without_mask: list[str] = field(default_factory=list)
    without_image: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    size_mismatch: list[str] = field(default_factory=list)
    bad_values: list[str] = field(default_factory=list)
    image_mismatch: list[str] = field(default_factory=list)
    # (image, dtype) of every image read, for the disagreement found once all are in.
    dtypes: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: Problems) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def kinds(self, total: int) -> list[tuple[str, list[str]]]:
        return [
            (f"image(s) of {total} have no mask file", self.without_mask),
            ("mask file(s) have no image", self.without_image),
            ("file(s) cannot be decoded", self.unreadable),
            ("mask(s) differ in size from their image", self.size_mismatch),
            ("mask(s) hold values the dataset does not declare", self.bad_values),
            ("image(s) disagree in channels, dtype or size", self.image_mismatch),
        ]

    def add_dtype_disagreement(self) -> None:
        """Images whose dtype differs from the most common one (one dtype feeds the model)."""
        counts = Counter(dtype for _, dtype in self.dtypes)
        if len(counts) > 1:
            usual = counts.most_common(1)[0][0]
            self.image_mismatch.extend(
                f"{name} is {dtype}, most images {usual}"
                for name, dtype in self.dtypes
                if dtype != usual
            )

    def __bool__(self) -> bool:
        return any(items for _, items in self.kinds(0))

    def message(self, root: Path, total: int) -> str:
        parts = []
        for label, items in self.kinds(total):
            if items:
                more = f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else ""
                parts.append(f"{len(items)} {label}, e.g. {'; '.join(items[:SHOWN])}{more}.")
        return (
            f"the dataset in {root} has problems (paths relative to it): "
            + " ".join(parts)
            + " Fix or remove these files (or point dataset.root at a clean copy) and run again;"
            " dataset.layout.check_files=false skips all but the missing-mask test."
        )


def check_samples(layout: Layout, samples: list[Sample], full: bool = True) -> None:
    """Raise UnetError listing every problem of `samples` (and orphan masks) in `layout`.

    With `full`, each image's header and each mask's pixels are read (in
    threads: OpenCV and Pillow release the GIL), which costs about one mask
    decode per image; without, only missing masks are looked for.
    """
    problems = Problems()
    labelled = [s for s in samples if s.mask is not None]
    rel = _relative_to(layout.root)
    for sample in labelled:
        missing = [f for f in layout.mask_files(sample) if not f.is_file()]
        if missing:
            problems.without_mask.append(f"{rel(sample.image)} (no {rel(missing[0])})")
    problems.without_image.extend(rel(p) for p in unmatched_masks(layout))
    if full:
        complete = [s for s in labelled if all(f.is_file() for f in layout.mask_files(s))]
        workers = min(8, usable_cores())
        with ThreadPoolExecutor(workers) as pool:
            results = pool.map(lambda s: _check_one(layout, s, rel), complete)
            for found in tqdm(results, total=len(complete), desc="checking dataset", disable=None):
                problems.merge(found)
        problems.add_dtype_disagreement()
    if problems:
        raise UnetError(problems.message(layout.root, len(labelled)))


def unmatched_masks(layout: Layout) -> list[Path]:
    """Image files in the dataset's mask folders (every class folder) that no sample refers to."""
    referenced: set[Path] = set()
    for sample in layout.known_samples():
        referenced.update(layout.mask_files(sample))
    folders = layout.mask_folders() or {p.parent for p in referenced}
    return [
        p
        for folder in sorted(folders)
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS and p not in referenced
    ]


def _check_one(layout: Layout, sample: Sample, rel: Callable[[Path], str]) -> Problems:
    found = Problems()
    size = _check_image(layout, sample.image, rel, found)
    for mask_path in layout.mask_files(sample):
        try:
            raw = layout.read_mask_raw(mask_path)
        except UnetError:
            found.unreadable.append(rel(mask_path))
            continue
        if size is not None and raw.shape[:2] != size:
            found.size_mismatch.append(
                f"{rel(mask_path)} is {_hw(raw.shape[:2])}, its image {_hw(size)}"
            )
        problem = layout.mask_value_problem(raw)
        if problem:
            found.bad_values.append(f"{rel(mask_path)} holds {problem}")
    return found


def _check_image(
    layout: Layout, image: Path, rel: Callable[[Path], str], found: Problems
) -> tuple[int, int] | None:
    """(height, width) of a sample's image from its header(s), noting what disagrees: an
    unreadable or missing (channel) file, channels the reader cannot make dataset.in_channels
    of, channel files of different sizes; its dtype is kept for the comparison across images."""
    files = layout.image_files(image)
    heads = []
    for file in files:
        head = header(file) if file.is_file() else None
        if head is None:
            found.unreadable.append(rel(file) + ("" if file.is_file() else " (missing)"))
            return None
        heads.append(head)
    sizes = sorted({h[:2] for h in heads})
    if len(sizes) > 1:
        shown = ", ".join(_hw(s) for s in sizes)
        found.image_mismatch.append(f"{rel(image)}: its channel files differ in size ({shown})")
    wanted = 1 if len(files) > 1 else layout.channels
    strict = len(files) > 1 or is_tiff(image) or wanted not in (1, 3)
    for file, head in zip(files, heads):
        if strict and not fits(head[2], wanted):
            found.image_mismatch.append(
                f"{rel(file)} has {head[2]} channel(s), the dataset reads {wanted} "
                f"(dataset.in_channels={layout.channels})"
            )
    dtypes = sorted({h[3] for h in heads})
    found.dtypes.append((rel(image), "+".join(dtypes)))
    return heads[0][:2]


def _relative_to(root: Path) -> Callable[[Path], str]:
    """Paths in messages relative to dataset.root (named once at the start), else absolute."""

    def rel(path: Path) -> str:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            return str(path)

    return rel


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the file's header (unetcli.core.tiff.header: TIFF and PNG headers,
    Pillow's for other formats, a full decode where neither knows the file)."""
    found = header(path)
    return None if found is None else (found[0], found[1])


def _hw(shape: Iterable[int]) -> str:
    height, width = shape
    return f"{width}x{height}"
