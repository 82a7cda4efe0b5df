"""The normalisation from stored values to model input, and the statistics it is built from.

Three modes (the `dataset.intensity` node; unetcli.datasets.intensity reads it):
- per_image: each image on its own, as 8-bit photographs have always been read: uint8 by
  its full scale (x / 255), deeper data stretched from its own minimum to its maximum; then
  dataset.mean / dataset.std (0..1 units).
- fixed: a stated range per channel (e.g. [-1000, 400] Hounsfield units, or 0..4095 for a
  12-bit sensor), clipped and mapped to 0..1; then dataset.mean / dataset.std.
- dataset: nnU-Net's: each channel clipped to percentiles measured once over the training
  images (0.5 and 99.5 by default), then z-scored with the clipped values' mean and std.
The same value means the same thing in every image under fixed and dataset, which per_image
erases (a dim cell is stretched to look bright).

This module is NumPy only: the training pipeline applies it (as an albumentations step) and
the exported graph (unetcli.export.graph) repeats the same float32 arithmetic in torch, so
training, evaluate, predict and the torch-free runner see the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MODES = ("per_image", "fixed", "dataset")
#: Pixels drawn from each image for the dataset statistics (all, for smaller images).
SAMPLED_PIXELS = 20_000


@dataclass(frozen=True)
class Normalisation:
    """float32 (H, W, C) model input from stored values: [stretch], clip, (x - offset) * factor.

    `per_image`: uint8 images use `offset`/`factor` as they stand (in 0..255 units); other
    dtypes are first stretched from the image's minimum to its maximum to 0..1 and then use
    `unit_offset`/`unit_factor`. Otherwise: clip to [low, high] per channel and use
    `offset`/`factor`.
    """

    mode: str
    offset: tuple[float, ...]
    factor: tuple[float, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    unit_offset: tuple[float, ...] | None = None
    unit_factor: tuple[float, ...] | None = None

    def constants(self, stretched: bool) -> tuple[np.ndarray, np.ndarray]:
        """(offset, factor) as float32 per channel, for an image stretched or not."""
        pair = (self.unit_offset, self.unit_factor) if stretched else (self.offset, self.factor)
        return np.asarray(pair[0], np.float32), np.asarray(pair[1], np.float32)

    def stretches(self, dtype: np.dtype | str) -> bool:
        """Whether images of this dtype are stretched per image first (per_image, not uint8)."""
        return self.mode == "per_image" and np.dtype(dtype) != np.uint8

    def __call__(self, image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32)
        stretched = self.stretches(image.dtype)
        if stretched:
            low, high = x.min(), x.max()
            x = (x - low) / (high - low) if high > low else np.zeros_like(x)
        if self.low is not None:
            x = np.clip(x, np.asarray(self.low, np.float32), np.asarray(self.high, np.float32))
        offset, factor = self.constants(stretched)
        if np.broadcast_shapes(x.shape, offset.shape) != x.shape:
            return (x - offset) * factor  # e.g. one grey channel against three statistics
        x -= offset  # in place: x is this call's own copy, so no temporaries are made
        x *= factor
        return x


def per_channel(values: Sequence[float], channels: int, key: str) -> list[float]:
    """One value per channel: as given, one value repeated, or the mean of RGB values for grey."""
    values = [float(v) for v in values]
    if len(values) == channels:
        return values
    if len(set(values)) == 1:
        return values[:1] * channels
    if channels == 1:
        return [float(np.mean(values))]
    raise ValueError(
        f"{key} has {len(values)} values but the images have {channels} channels; give "
        f"{channels} values (one per channel) or one value for all"
    )


def build(
    mode: str,
    mean: Sequence[float],
    std: Sequence[float],
    ranges: Sequence[Sequence[float]] | None = None,
    statistics: dict | None = None,
) -> Normalisation:
    """The normalisation of a mode from per-channel numbers (lists of one value per channel).

    `ranges`: fixed mode's [low, high] per channel; `statistics`: dataset mode's measured
    low, high, mean and std per channel. Constants are computed in float64 and rounded once.
    """
    mean64, std64 = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if mode == "per_image":
        return Normalisation(
            mode,
            _t(mean64 * 255.0),
            _t(1.0 / (std64 * 255.0)),
            unit_offset=_t(mean64),
            unit_factor=_t(1.0 / std64),
        )
    if mode == "fixed":
        low, high = (np.asarray(v, np.float64) for v in zip(*ranges))
        width = high - low
        return Normalisation(
            mode, _t(low + mean64 * width), _t(1.0 / (std64 * width)), _t(low), _t(high)
        )
    stats = {k: np.asarray(statistics[k], np.float64) for k in ("low", "high", "mean", "std")}
    return Normalisation(
        mode,
        _t(stats["mean"]),
        _t(1.0 / np.maximum(stats["std"], 1e-8)),
        _t(stats["low"]),
        _t(stats["high"]),
    )


def _t(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, np.float32))


def pixel_sample(image: np.ndarray, seed: int, size: int = SAMPLED_PIXELS) -> np.ndarray:
    """Up to `size` pixels (K, C) float64 of an image, drawn without replacement, seeded."""
    flat = image.reshape(-1, image.shape[-1])
    if len(flat) > size:
        flat = flat[np.random.default_rng(seed).choice(len(flat), size, replace=False)]
    return flat.astype(np.float64)


def measure(
    samples: Iterable[np.ndarray], percentiles: Sequence[float] = (0.5, 99.5)
) -> dict[str, list[float]]:
    """Per channel: the percentiles of the pooled pixel samples, and the mean and std of the
    values clipped to them (nnU-Net's CT normalisation, measured over all pixels)."""
    pooled = np.concatenate(list(samples))
    low, high = np.percentile(pooled, list(percentiles), axis=0)
    clipped = np.clip(pooled, low, high)
    return {
        "low": _rounded(low),
        "high": _rounded(high),
        "mean": _rounded(clipped.mean(0)),
        "std": _rounded(np.maximum(clipped.std(0), 1e-6)),
    }


def _rounded(values: np.ndarray) -> list[float]:
    """Six significant digits: readable in the config, exact enough for float32 input."""
    return [float(f"{v:.6g}") for v in np.asarray(values, np.float64)]
