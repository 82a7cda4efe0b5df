"""`unet augment`: look at augmented training samples, masks overlaid, before training."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig

from unetcli.augmentation.copies import fresh_folder, write_copies
from unetcli.augmentation.preview import Preview
from unetcli.config.location import config_dir
from unetcli.core.console import print_summary
from unetcli.core.limits import apply_limits
from unetcli.core.task import Task
from unetcli.datasets.folds import dataset_split
from unetcli.datasets.intensity import check_transforms, resolve_intensity
from unetcli.datasets.layouts import build_layout
from unetcli.datasets.torch_dataset import build_transform
from unetcli.errors import UnetError, user_errors
from unetcli.models.input_stats import resolve_input_stats


def write_folder(cfg: DictConfig) -> Path:
    """Every labelled image and mask plus augment.copies augmented ones, in the folder layout."""
    out = Path(cfg.augment.output_dir).expanduser().resolve()
    copies = int(cfg.augment.copies)
    if copies < 1:
        raise UnetError(f"augment.copies must be at least 1, got {copies}")
    layout = build_layout(cfg.dataset)
    samples = [s for s in layout.labelled_samples() if s.mask is not None]
    layout.check(samples)
    dtype = resolve_intensity(cfg.dataset, layout, samples, int(cfg.seed))
    if dtype != "uint8" or int(cfg.dataset.in_channels) not in (1, 3):
        raise UnetError(
            "augment.output_dir writes 8-bit RGB PNG copies, which would lose these images' "
            f"{dtype} values or channels; augment them during training instead (the "
            "augmentation config applies there)"
        )
    fresh_folder(out)
    train = build_transform(cfg.dataset, cfg.augmentation, "train")
    train.set_random_seed(int(cfg.seed))
    pipelines = (build_transform(cfg.dataset, None, "val"), train)
    written = write_copies(layout, samples, pipelines, cfg.dataset, out, copies)
    classes = int(cfg.dataset.num_classes)
    print_summary(
        "unet augment: done",
        [
            ("augmentation", f"{cfg.augmentation.get('name', '?')}, seed {cfg.seed}"),
            ("wrote", f"{written} images and masks ({len(samples)} x (1 + {copies})) in {out}"),
            (
                "train",
                f"unet train dataset=folder dataset.root={out} augmentation=none"
                + (f" dataset.num_classes={classes}" if classes > 1 else ""),
            ),
        ],
    )
    return out


def run(cfg: DictConfig) -> Path:
    """Write the preview grid (or, with augment.output_dir, the copies); returns the path."""
    apply_limits(cfg.limits)
    resolve_input_stats(cfg)  # a null dataset.mean/std, as `unet train` would resolve it
    opts = cfg.augment
    if opts.output_dir:
        return write_folder(cfg)
    if opts.split not in ("train", "val"):
        raise UnetError(f"augment.split must be train or val, got {opts.split!r}")
    if int(opts.images) < 1 or int(opts.variants) < 0:
        raise UnetError("augment.images must be at least 1 and augment.variants at least 0")
    layout = build_layout(cfg.dataset)
    train, val = dataset_split(layout, cfg.dataset, int(cfg.seed))
    pool = [s for s in (train if opts.split == "train" else val) if s.mask is not None]
    if not pool:
        raise UnetError(
            f"the {opts.split} split of {layout.root} has no labelled images to show; "
            "use augment.split=train or check dataset.validation_size"
        )
    rng = np.random.default_rng(int(cfg.seed))
    picks = sorted(rng.choice(len(pool), min(int(opts.images), len(pool)), replace=False))
    dtype = resolve_intensity(cfg.dataset, layout, train, int(cfg.seed))  # as training will
    check_transforms(cfg.augmentation, int(cfg.dataset.in_channels), dtype)
    train_transform = build_transform(cfg.dataset, cfg.augmentation, "train")
    train_transform.set_random_seed(int(cfg.seed))
    preview = Preview(
        train_transform,
        build_transform(cfg.dataset, cfg.augmentation, "val"),
        list(cfg.dataset.mean),
        list(cfg.dataset.std),
        variants=int(opts.variants),
        alpha=float(opts.alpha),
        ignore_index=Task.from_config(cfg.dataset).ignore_index,
    )
    grid = preview.grid(layout, [pool[i] for i in picks])
    path = Path(opts.output) if opts.output else Path(cfg.paths.run_dir) / "augmentations.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.png'}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise UnetError(f"cannot write {path}; use a .png name in a writable folder")
    os.replace(tmp, path)
    print_summary(
        "unet augment: done",
        [
            ("augmentation", str(cfg.augmentation.get("name", "?"))),
            ("dataset", f"{cfg.dataset.get('name', '?')} ({layout.root}), {opts.split} split"),
            ("grid", f"{len(picks)} images x (original + {opts.variants} augmented)"),
            ("preview", str(path)),
        ],
    )
    return path


@hydra.main(config_path=config_dir(), config_name="augment", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
