"""How images and masks pair up by file stem, and the near-misses that almost do.

The most common reason for "no mask found" or an all-black prediction is a
name that differs by a suffix (`a.png` vs `a_mask.png`) or by case; each such
near-miss is reported with the option that fixes it, or the rename it needs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from unetcli.datasets.io import list_images


@dataclass
class Pairing:
    """Counts and examples of how the image and mask folders match."""

    images: int
    masks: int
    paired: int
    image_extensions: dict[str, int]
    mask_extensions: dict[str, int]
    without_mask: list[str] = field(default_factory=list)
    without_image: list[str] = field(default_factory=list)
    near_misses: list[str] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)


#: Words in a folder name that mark it as holding masks rather than images.
MASK_WORDS = ("mask", "label", "annot", "gt", "ground", "seg", "target")


def guess_folders(root: Path, images: str, masks: str) -> dict[str, str]:
    """dataset.layout.images/masks options for folders not named images/ and masks/.

    Among the sub-folders that hold image files, one whose name says mask (label,
    gt, annotation, ...) holds the masks and another the images.
    """
    if (root / images).is_dir() and (root / masks).is_dir() or not root.is_dir():
        return {}
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and list_images(d))
    marked = [n for n in found if any(w in n.lower() for w in MASK_WORDS)]
    plain = [n for n in found if n not in marked and "test" not in n.lower()]
    options: dict[str, str] = {}
    if not (root / masks).is_dir() and len(marked) == 1:
        options["dataset.layout.masks"] = marked[0]
    if not (root / images).is_dir() and len(plain) == 1:
        options["dataset.layout.images"] = plain[0]
    return options


def _extensions(paths: list[Path]) -> dict[str, int]:
    return dict(Counter(p.suffix.lower() for p in paths))


def common_suffix(image_stems: set[str], mask_stems: list[str]) -> tuple[str, int]:
    """The suffix most masks carry after an image stem (e.g. `_mask`), and how many do."""
    counts: Counter[str] = Counter()
    for stem in mask_stems:
        for cut in range(1, len(stem)):
            if stem[:cut] in image_stems:
                counts[stem[cut:]] += 1
    return counts.most_common(1)[0] if counts else ("", 0)


def pair_folders(images_dir: Path, masks_dir: Path, mask_suffix: str) -> Pairing:
    """Pair `images_dir` with `masks_dir` by stem, trying the suffix and case that fix misses."""
    images = list_images(images_dir) if images_dir.is_dir() else []
    masks = list_images(masks_dir) if masks_dir.is_dir() else []
    image_stems = {p.stem for p in images}
    suffix = mask_suffix
    paired = _paired(image_stems, masks, suffix)
    guess, count = common_suffix(image_stems, [p.stem for p in masks])
    result = Pairing(len(images), len(masks), 0, _extensions(images), _extensions(masks))
    if count > len(paired):
        result.near_misses.append(
            f"{count} masks are named <image stem>{guess} (e.g. "
            f"{next(p.name for p in masks if p.stem.endswith(guess))}): "
            f"dataset.layout.mask_suffix={guess} pairs them"
        )
        result.options["dataset.layout.mask_suffix"] = guess
        suffix, paired = guess, _paired(image_stems, masks, guess)
    stems = {_stem(p, suffix) for p in masks}
    lower = {s.lower(): s for s in stems}
    for path in images:
        if path.stem in stems:
            continue
        twin = lower.get(path.stem.lower())
        if twin is not None:
            result.near_misses.append(
                f"image {path.name} and mask {twin}{suffix}.* differ only in case: rename one"
            )
        result.without_mask.append(path.name)
    result.without_image = sorted(p.name for p in masks if _stem(p, suffix) not in image_stems)
    result.paired = len(paired)
    return result


def _stem(path: Path, suffix: str) -> str:
    stem = path.stem
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def _paired(image_stems: set[str], masks: list[Path], suffix: str) -> set[str]:
    return {
        _stem(p, suffix)
        for p in masks
        if (not suffix or p.stem.endswith(suffix)) and _stem(p, suffix) in image_stems
    }
