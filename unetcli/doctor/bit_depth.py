"""Which `dataset.intensity` mode fits the images: from bit depth, value range and spread.

- 8-bit images are photographs (or stored like them): per_image, x / 255, as always.
- Deeper or float images whose own value ranges agree (every image spans about the same
  0.5-99.5 percentiles, as CT slices with air and bone do): fixed, that shared range mapped
  to 0..1, so a value keeps its meaning (and the range is easy to read and to state).
- Deeper or float images whose ranges differ (a dim well beside a bright one, bands of
  different gain): dataset, nnU-Net's clip to the set's percentiles and z-score, measured by
  training over its images.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from unetcli.core.normalisation import build
from unetcli.doctor.statistics import ImageFacts, mean_std

#: Largest spread of the images' own percentiles (as a share of the set's range) for `fixed`.
SHARED_RANGE = 0.25
PERCENTILES = (0.5, 99.5)


@dataclass
class Advice:
    """The recommended mode, why, what was measured, and the options that choose it."""

    mode: str
    why: str
    dtype: str
    low: list[float]
    high: list[float]
    spread: float
    options: dict[str, object] = field(default_factory=dict)

    def report(self) -> dict:
        return {
            "dtype": self.dtype,
            "mode": self.mode,
            "why": self.why,
            "percentiles": list(PERCENTILES),
            "low": self.low,
            "high": self.high,
            "spread": round(self.spread, 3),
        }


def recommend(facts: list[ImageFacts]) -> Advice:
    """The mode for these images, with its options (mean/std where the mode uses them)."""
    dtype = Counter(f.dtype for f in facts).most_common(1)[0][0]
    pooled = np.concatenate([f.sample for f in facts]).astype(np.float64)
    low, high = np.percentile(pooled, PERCENTILES, axis=0)
    spread = _spread(facts, high - low)
    shown_low, shown_high = _round(low), _round(high)
    if dtype == "uint8":
        mean, std = mean_std(facts)
        why = "8-bit images: each read by its full scale (x / 255), as photographs are"
        options = {"dataset.mean": mean, "dataset.std": std, "dataset.intensity.mode": "per_image"}
        return Advice("per_image", why, dtype, shown_low, shown_high, spread, options)
    if spread <= SHARED_RANGE:
        ranges = [[lo, hi] for lo, hi in zip(shown_low, shown_high)]
        mean, std = _mapped_mean_std(pooled, ranges)
        why = (
            f"{dtype} images sharing one value range (their own {PERCENTILES[0]}-"
            f"{PERCENTILES[1]} percentiles differ by {spread:.0%} of it at most): that "
            "range is mapped to 0..1, so a value means the same in every image"
        )
        options = {
            "dataset.intensity.mode": "fixed",
            "dataset.intensity.range": ranges,
            "dataset.mean": mean,
            "dataset.std": std,
        }
        return Advice("fixed", why, dtype, shown_low, shown_high, spread, options)
    why = (
        f"{dtype} images whose own value ranges differ ({spread:.0%} of the set's range): "
        "each channel is clipped to the set's percentiles and z-scored, measured by "
        "training over its images; per-image stretching would erase what the values mean"
    )
    options = {"dataset.intensity.mode": "dataset"}
    return Advice("dataset", why, dtype, shown_low, shown_high, spread, options)


def _spread(facts: list[ImageFacts], width: np.ndarray) -> float:
    """How far the images' own low and high percentiles wander (10th to 90th percentile
    across images), as a share of the set's range, in the worst channel."""
    own = np.stack([np.percentile(f.sample, PERCENTILES, axis=0) for f in facts])  # (N, 2, C)
    wander = np.percentile(own, 90, axis=0) - np.percentile(own, 10, axis=0)  # (2, C)
    return float((wander / np.maximum(width, 1e-12)).max())


def _mapped_mean_std(pooled: np.ndarray, ranges: list[list[float]]) -> tuple[list, list]:
    """mean and std (0..1 units) of the pixels after the fixed range's mapping."""
    channels = pooled.shape[1]
    unit = build("fixed", [0.0] * channels, [1.0] * channels, ranges)
    mapped = unit(pooled[None].astype(np.float32))[0].astype(np.float64)
    mean = [round(float(v), 4) for v in mapped.mean(0)]
    std = [round(max(float(v), 1e-3), 4) for v in mapped.std(0)]
    return mean, std


def _round(values: np.ndarray) -> list[float]:
    """Four significant digits: a range a person reads and types."""
    return [float(f"{v:.4g}") for v in np.asarray(values, np.float64)]
