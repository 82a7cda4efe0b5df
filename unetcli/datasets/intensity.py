"""`dataset.intensity`: the normalisation chosen for a dataset, resolved once, applied everywhere.

Training resolves the node at its start (`resolve_intensity`): `auto` becomes per_image for
8-bit data and dataset for anything deeper, the reader's dtype is recorded, and dataset mode
measures its percentiles, mean and std over the training images. The resolved node is part of
the checkpoint's config, so evaluate, predict, export and the runner apply exactly that
transform (unetcli.core.normalisation; the exported graph repeats it in torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
from omegaconf import DictConfig, OmegaConf

from unetcli.core import normalisation as core
from unetcli.core.seeding import mix
from unetcli.datasets.base import Layout, Sample
from unetcli.errors import UnetError

#: Images the dataset statistics are measured on at most (spread evenly over the set).
MEASURED_IMAGES = 400

#: Transforms that assume 8-bit RGB colour (hue, saturation, colour casts, weather effects).
COLOUR_TRANSFORMS = {
    "HueSaturationValue", "RGBShift", "ColorJitter", "ToGray", "ToSepia", "FancyPCA",
    "ChannelShuffle", "ISONoise", "PlanckianJitter", "RandomSunFlare", "RandomFog",
    "RandomRain", "RandomShadow", "RandomSnow", "RandomGravel", "ChromaticAberration",
    "ChannelDropout",
}  # fmt: skip
#: Transforms that assume values on an 8-bit scale (0..255, or 0..1 for floats).
EIGHT_BIT_TRANSFORMS = {
    "CLAHE", "Equalize", "Posterize", "Solarize", "ImageCompression", "JpegCompression",
    "RandomToneCurve", "RandomBrightnessContrast", "RandomGamma", "Superpixels", "Emboss",
    "Sharpen", "UnsharpMask", "Downscale", "AutoContrast", "Illumination",
}  # fmt: skip


def node(dataset_cfg: DictConfig) -> dict:
    """The dataset's intensity node as a plain dict (absent in older configs: per_image)."""
    found = dataset_cfg.get("intensity")
    if found is None:
        return {"mode": "per_image"}
    return OmegaConf.to_container(found, resolve=True) if isinstance(found, DictConfig) else found


def normalisation(dataset_cfg: DictConfig) -> core.Normalisation:
    """The resolved normalisation of a dataset config (training's, or a checkpoint's)."""
    spec = node(dataset_cfg)
    mode = str(spec.get("mode") or "per_image")
    channels = int(dataset_cfg.get("in_channels", 3))
    if mode == "auto":  # not resolved (no training images read): as 8-bit photographs
        mode = "dataset" if spec.get("statistics") else "per_image"
    if mode not in core.MODES:
        raise UnetError(
            f"dataset.intensity.mode must be auto, per_image, fixed or dataset, not {mode!r}"
        )
    try:
        if mode == "dataset":  # z-scored with its own statistics: mean/std are not used
            mean, std = [0.0] * channels, [1.0] * channels
        else:
            # A null mean/std not resolved by a training run (unetcli.models.input_stats):
            # the generic 0.5 / 0.25 that such a run would choose without a pretrained encoder.
            given_mean, given_std = dataset_cfg.get("mean"), dataset_cfg.get("std")
            mean = core.per_channel(
                [0.5] if given_mean is None else given_mean, channels, "dataset.mean"
            )
            std = core.per_channel(
                [0.25] if given_std is None else given_std, channels, "dataset.std"
            )
        ranges = _ranges(spec.get("range"), channels) if mode == "fixed" else None
    except ValueError as err:
        raise UnetError(str(err)) from err
    stats = spec.get("statistics")
    if mode == "dataset" and not stats:
        raise UnetError(
            "dataset.intensity.mode=dataset needs the statistics training measures over its "
            "images (dataset.intensity.statistics); this config has none. Use the checkpoint's "
            "config, or train first."
        )
    return core.build(mode, mean, std, ranges, stats)


def input_dtype(dataset_cfg: DictConfig) -> str:
    """The dtype training read its images as (older checkpoints: uint8, the only one then)."""
    return str(node(dataset_cfg).get("dtype") or "uint8")


def _ranges(value: Any, channels: int) -> list[list[float]]:
    """fixed mode's [low, high] per channel from one pair or one pair per channel."""
    if not value:
        raise ValueError(
            "dataset.intensity.mode=fixed needs dataset.intensity.range: [low, high] for every "
            "channel (e.g. [-1000, 400] for CT, [0, 4095] for a 12-bit sensor) or one pair per "
            "channel ([[low, high], ...]); `unet doctor` suggests one"
        )
    pairs = [value] * channels if not isinstance(value[0], Sequence) else list(value)
    if len(pairs) == 1:
        pairs = pairs * channels
    if len(pairs) != channels or any(len(p) != 2 or float(p[1]) <= float(p[0]) for p in pairs):
        raise ValueError(
            f"dataset.intensity.range={value} must be one [low, high] pair with low < high, or "
            f"{channels} of them (one per channel)"
        )
    return [[float(lo), float(hi)] for lo, hi in pairs]


class Normalise(A.ImageOnlyTransform):
    """The last step of every pipeline: stored values to float32 model input (see `node`)."""

    def __init__(self, normalisation: core.Normalisation, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.normalisation = normalisation

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self.normalisation(img)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("normalisation",)


def resolve_intensity(
    dataset_cfg: DictConfig,
    layout: Layout,
    samples: Sequence[Sample],
    seed: int,
    announce: bool = True,
) -> str:
    """Fill in dataset.intensity (mode, dtype, statistics) from the training images, in place;
    returns the reader's dtype. Statistics the config already gives are kept; a resumed run
    measures the same images with the same seeds, so it gets the same numbers. Every process
    of a run measures (they need the numbers); `announce` is false in all but the first."""
    first = layout.read_image(samples[0].image)
    dtype = first.dtype.name
    spec = dataset_cfg.get("intensity")
    if spec is None:
        return dtype
    if spec.get("dtype") not in (None, dtype):
        raise UnetError(
            f"dataset.intensity.dtype is {spec.dtype} but {samples[0].image} reads as {dtype}; "
            "the images differ from those the statistics were measured on"
        )
    spec.dtype = dtype
    if spec.mode == "auto":
        spec.mode = "per_image" if dtype == "uint8" else "dataset"
    if spec.mode == "dataset" and not spec.get("statistics"):
        percentiles = [float(v) for v in spec.get("percentiles") or (0.5, 99.5)]
        spec.statistics = measure_images(layout, samples, percentiles, seed, announce)
    normalisation(dataset_cfg)  # a bad range or mean stops here, before the first epoch
    return dtype


def measure_images(
    layout: Layout,
    samples: Sequence[Sample],
    percentiles: Sequence[float],
    seed: int,
    announce: bool = True,
) -> dict[str, list[float]]:
    """dataset mode's statistics over (up to MEASURED_IMAGES of) the training images."""
    picks = np.linspace(0, len(samples) - 1, min(len(samples), MEASURED_IMAGES)).round()
    chosen = [samples[int(i)] for i in sorted(set(picks.tolist()))]
    pieces = [
        core.pixel_sample(layout.read_image(s.image), mix(seed, i)) for i, s in enumerate(chosen)
    ]
    if announce:
        print(f"intensity: measured the {percentiles} percentiles over {len(chosen)} images")
    return core.measure(pieces, percentiles)


def check_transforms(augmentation_cfg: DictConfig | None, channels: int, dtype: str) -> None:
    """Refuse, by name, augmentation steps that assume 8-bit RGB for other data."""
    if augmentation_cfg is None:
        return
    steps = [*(augmentation_cfg.get("train") or []), *(augmentation_cfg.get("val") or [])]
    names = _names(OmegaConf.to_container(OmegaConf.create({"s": steps}))["s"])
    for name in names:
        colour = name in COLOUR_TRANSFORMS and channels not in (1, 3)
        if colour or (name in COLOUR_TRANSFORMS | EIGHT_BIT_TRANSFORMS and dtype != "uint8"):
            what = "colour in 3-channel RGB" if colour else "values on an 8-bit scale (0..255)"
            raise UnetError(
                f"the augmentation's step {name} assumes {what}, but these images have "
                f"{channels} channel(s) of {dtype} values: its result would not mean what it "
                "does on photographs. Remove it (spatial steps such as flips, rotations, "
                "affine and grid distortion work on any data), e.g. augmentation=flips."
            )


def _names(steps: list) -> list[str]:
    """The class names of the steps, nested ones (OneOf, SomeOf) included."""
    names = []
    for step in steps:
        if isinstance(step, dict):
            names.append(str(step.get("_target_", "")).rsplit(".", 1)[-1])
            names.extend(_names(step.get("transforms") or []))
    return names
