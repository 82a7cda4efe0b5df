"""The dataset's fingerprint: pairing, encoding, image and object statistics, duplicates.

`analyse` reads the data once and returns a plain dict (what doctor.json holds)
together with the `dataset.*` options that read the folder correctly; `unet plan`
starts from the same dict.
"""

from __future__ import annotations

import copy
import csv
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from unetcli.config.instantiate import build
from unetcli.core.tiff import header, is_tiff
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.file_checks import image_size
from unetcli.datasets.folder import FolderLayout
from unetcli.datasets.io import read_image
from unetcli.doctor.bit_depth import recommend
from unetcli.doctor.encoding import Encoding, MaskSummary, decide, summarise_mask
from unetcli.doctor.pairing import Pairing, guess_folders, pair_folders
from unetcli.doctor.statistics import ImageFacts, image_facts, mask_facts, threaded
from unetcli.errors import UnetError


@dataclass
class Analysis:
    """The fingerprint (JSON-ready), the suggested options, and a few samples to draw."""

    report: dict
    options: dict[str, object]
    layout: Layout
    samples: list[Sample]


def with_options(cfg: DictConfig, options: dict[str, object]) -> DictConfig:
    """A copy of the whole config with `dataset.*` options applied (interpolations kept)."""
    cfg = copy.deepcopy(cfg)
    for key, value in options.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _layout(dataset_cfg: DictConfig) -> Layout:
    layout = build(dataset_cfg.layout, "dataset.layout")
    layout.prepare()
    return layout


def _pairing(cfg: DictConfig) -> Pairing | None:
    """How the folder layout's files pair, after finding image and mask folders by name."""
    layout = build(cfg.dataset.layout, "dataset.layout")
    if not isinstance(layout, FolderLayout) or layout.multilabel:
        return None
    folders = guess_folders(layout.root, layout.image_folder, layout.masks)
    if folders:
        layout = build(with_options(cfg, folders).dataset.layout, "dataset.layout")
    pairing = pair_folders(
        layout.root / layout.image_folder, layout.root / layout.masks, layout.mask_suffix
    )
    for key, name in folders.items():
        pairing.near_misses.insert(0, f"the {key.rsplit('.', 1)[1]} are in {name}/: {key}={name}")
    pairing.options = {**folders, **pairing.options}
    return pairing


def _samples(layout: Layout, pairing: Pairing | None) -> list[Sample]:
    try:
        samples = layout.labelled_samples()
    except UnetError as err:
        misses = "; ".join(pairing.near_misses) if pairing else ""
        raise UnetError(f"{err} {misses}".strip()) from err
    return [
        s for s in samples if s.mask is not None and all(f.is_file() for f in layout.mask_files(s))
    ]


def _read_masks(layout: Layout, sample: Sample) -> tuple[list[MaskSummary], str | None]:
    """The sample's mask summaries, or why the sample cannot be used (named by file)."""
    try:
        summaries = [summarise_mask(f) for f in layout.mask_files(sample)]
    except (OSError, ValueError) as err:
        return [], f"cannot decode a mask of {sample.image.name} ({err})"
    size = image_size(sample.image)
    if size is None:
        return [], f"cannot decode image {sample.image.name}"
    for path, found in zip(layout.mask_files(sample), summaries):
        if tuple(found.shape) != tuple(size):
            return [], f"mask {path.name} is {found.shape[1]}x{found.shape[0]}, its image " + (
                f"{size[1]}x{size[0]}"
            )
    return summaries, None


def _encoding(layout: Layout, samples: list[Sample]) -> tuple[Encoding, int, list, list[str]]:
    """The encoding of the readable samples; those, and one line per sample left out."""
    read = threaded(partial(_read_masks, layout), samples, "reading masks")
    problems = [why for _, why in read if why]
    usable = [s for s, (_, why) in zip(samples, read) if not why]
    summaries = [m for found, why in read if not why for m in found]
    if not summaries:
        raise UnetError(f"no mask in {layout.root} can be used: {'; '.join(problems[:3])}")
    return decide(summaries), max(m.bits for m in summaries), usable, problems


def _write_table(colours: list[tuple[int, int, int]], out_dir: Path) -> Path:
    path = out_dir / "classes.csv"
    tmp = path.with_name(".classes.csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "r", "g", "b"])
        for k, colour in enumerate(colours):
            writer.writerow(["background" if k == 0 else f"class{k}", *colour])
    tmp.replace(path)
    return path


def analyse(cfg: DictConfig, out_dir: Path) -> Analysis:
    """Read the dataset of `cfg` once; suggest the options that read it correctly."""
    options: dict[str, object] = {}
    folders = (cfg.dataset.get("layout") or {}).get("channel_folders")
    if folders and len(folders) != int(cfg.dataset.in_channels):
        options["dataset.in_channels"] = len(folders)  # one folder per channel
    pairing = _pairing(with_options(cfg, options))
    options.update(pairing.options if pairing else {})
    layout = _layout(with_options(cfg, options).dataset)
    samples = _samples(layout, pairing)
    if not samples:
        raise UnetError(f"no image in {layout.root} has a mask; the doctor has nothing to read")
    encoding, mask_bits, samples, problems = _encoding(layout, samples)
    if isinstance(layout, FolderLayout) and not layout.multilabel:
        options.update(encoding.options)
        if encoding.colours:
            options["dataset.layout.class_csv"] = str(_write_table(encoding.colours, out_dir))
    images = _image_facts(cfg, layout, samples, options)
    advice = recommend(images)
    if cfg.dataset.get("intensity") is not None:
        options.update(advice.options)
    else:  # a dataset without the intensity node reads 8-bit images only
        options.update({k: v for k, v in advice.options.items() if "intensity" not in k})
    mean, std = options.get("dataset.mean"), options.get("dataset.std")
    dataset_cfg = with_options(cfg, options).dataset
    layout = _layout(dataset_cfg)
    objects = _objects(layout, samples, dataset_cfg)
    report = {
        "dataset": {"name": str(cfg.dataset.name), "root": str(layout.root)},
        "pairing": pairing.__dict__ if pairing else None,
        "encoding": {
            "name": encoding.name,
            "detail": encoding.detail,
            "mask_bits": mask_bits,
            "colours": encoding.colours,
        },
        "images": {**_image_summary(images, mean, std), "intensity": advice.report()},
        "objects": objects,
        "duplicates": _duplicates(layout, images),
        "problems": problems,
        "options": options,
    }
    return Analysis(report, options, layout, samples)


def _image_facts(
    cfg: DictConfig, layout: Layout, samples: list[Sample], options: dict
) -> list[ImageFacts]:
    """Facts of every image as training would read it. 8-bit single-file images are read as
    RGB, or as grey where every one is grey (suggesting in_channels 1); other images (deeper,
    N-channel, channel folders) with all their channels, suggesting in_channels where the
    config's differs."""
    files = layout.image_files(samples[0].image)
    head = header(files[0])
    if head is None:
        raise UnetError(f"cannot read image {files[0]}; replace or remove it")
    photo = head[2] in (1, 3) or (head[2] == 4 and not is_tiff(files[0]))  # 4: RGBA PNG
    if len(files) == 1 and head[3] == "uint8" and photo:
        return _photo_facts(layout, samples, options, head[2])
    stored = len(files) if len(files) > 1 else head[2]
    if stored != int(cfg.dataset.in_channels):
        options["dataset.in_channels"] = stored
    reader = _layout(with_options(cfg, options).dataset)
    return threaded(
        lambda s: image_facts(s.image, reader.read_image, reader.image_files(s.image)),
        samples,
        "reading images",
    )


def _photo_facts(
    layout: Layout, samples: list[Sample], options: dict, first: int
) -> list[ImageFacts]:
    """8-bit images: read as RGB, or as grey (in_channels 1) where every one is grey."""
    channels = 1 if first == 1 else 3
    paths = [s.image for s in samples]
    facts = threaded(
        lambda p: image_facts(p, partial(read_image, channels=channels)), paths, "reading images"
    )
    if all(f.channels == 1 for f in facts):
        options["dataset.in_channels"] = 1
    elif channels == 1:
        facts = threaded(
            lambda p: image_facts(p, partial(read_image, channels=3)), paths, "reading images"
        )
    return facts


def _image_summary(images: list[ImageFacts], mean: list | None, std: list | None) -> dict:
    sizes = Counter(f"{f.width}x{f.height}" for f in images)
    heights = [f.height for f in images]
    widths = [f.width for f in images]
    return {
        "count": len(images),
        "sizes": dict(sizes.most_common(5)),
        "distinct_sizes": len(sizes),
        "median_size": [int(np.median(heights)), int(np.median(widths))],
        "not_divisible_by_16": sum(1 for f in images if f.height % 16 or f.width % 16),
        "channels": dict(Counter(str(f.channels) for f in images)),
        "bits": dict(Counter(str(f.bits) for f in images)),
        "mean": mean,
        "std": std,
    }


def _objects(layout: Layout, samples: list[Sample], dataset_cfg: DictConfig) -> dict:
    """Class frequencies and object sizes, measured on masks resized to the planned size."""
    size = dataset_cfg.image_size
    planned = None if size is None else (int(size[0]), int(size[1]))
    ignore = dataset_cfg.ignore_index

    def one(sample: Sample):
        return mask_facts(layout.read_mask(sample.mask), planned, ignore)

    facts = threaded(one, samples, "measuring objects")
    pixels: Counter[int] = Counter()
    areas: dict[int, list[int]] = defaultdict(list)
    for f in facts:
        pixels.update(f.pixels)
        for k, found in f.objects.items():
            areas[k].extend(found)
    total = sum(f.total for f in facts) or 1  # multilabel classes overlap: shares of pixels
    every = sorted(a for found in areas.values() for a in found)
    return {
        "planned_size": list(planned) if planned else None,
        "class_frequency": {str(k): round(n / total, 5) for k, n in sorted(pixels.items())},
        "objects_per_image": round(len(every) / len(samples), 2),
        "smallest_areas": every[:5],
        "median_area": int(np.median(every)) if every else 0,
        "areas": every,
    }


def _duplicates(layout: Layout, images: list[ImageFacts]) -> dict:
    """Byte-identical images within the labelled set, and between it and the test set."""
    groups: dict[str, list[str]] = defaultdict(list)
    for f in images:
        groups[f.digest].append(f.path.name)
    within = [names for names in groups.values() if len(names) > 1]
    try:
        tests = layout.held_out_samples()
    except (UnetError, NotImplementedError):
        tests = []
    across = [
        [groups[d][0], s.image.name]
        for s in tests
        if (d := hashlib.sha1(s.image.read_bytes()).hexdigest()) in groups
    ]
    return {"within": within, "train_test": across}
