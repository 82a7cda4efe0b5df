"""Where each original image lies in the model's input, and how to map predictions back.

The evaluation/test transform (a resize to `dataset.image_size`, then the
augmentation's `val:` list, e.g. padding to a multiple of 32) changes an
image's size and position. To score or submit at the original resolution,
predictions must undo exactly that: padding is cropped off, a resize is
resized back. Rather than guess from the sizes, the transform records what
it applied (albumentations' `save_applied_params`), and the image's extent is
followed through each step as a box in the model's input.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

from unetcli.errors import UnetError

# Transforms that only rescale the whole image.
_SCALE = {"Resize", "LongestMaxSize", "SmallestMaxSize", "RandomScale"}
# Transforms that pad and/or crop by recorded amounts.
_PAD = {"PadIfNeeded", "Pad"}
_CROP = {"CenterCrop", "Crop", "CropNonEmptyMaskIfExists", "RandomCrop"}


@dataclass(frozen=True)
class Geometry:
    """An image's original size, and the box its full extent covers in the model input.

    box = (x0, y0, x1, y1) in model-input pixels (edges, not centres); it may
    reach beyond the input where the transform cropped.
    """

    height: int
    width: int
    box: tuple[float, float, float, float]

    def as_tuple(self) -> tuple[int, int, float, float, float, float]:
        return (self.height, self.width, *self.box)

    @classmethod
    def from_tuple(cls, values) -> Geometry:
        h, w, x0, y0, x1, y1 = (float(v) for v in values)
        return cls(int(h), int(w), (x0, y0, x1, y1))


def tracked(transform: A.Compose) -> A.Compose:
    """The same pipeline, recording the parameters each step applied."""
    return A.Compose(list(transform.transforms), strict=True, save_applied_params=True)


def _flatten(transforms) -> dict[str, A.BasicTransform]:
    out: dict[str, A.BasicTransform] = {}
    for t in transforms:
        if hasattr(t, "transforms"):
            out.update(_flatten(t.transforms))
        out[type(t).__name__] = t
    return out


def geometry_of(
    applied: list[tuple[str, dict]],
    original: tuple[int, int],
    final: tuple[int, int],
    transform: A.Compose,
) -> Geometry:
    """Follow the image's extent through the applied steps (see `tracked`).

    Pixel-only steps (normalisation, colour) leave it alone; resizes scale it;
    padding and crops shift it. A spatial step of another kind (a flip, a
    rotation) cannot be undone from a box and is refused with the step's name.
    """
    height, width = original
    x0, y0, x1, y1 = 0.0, 0.0, float(width), float(height)
    known = _flatten(transform.transforms)
    # Each step records the shape it received; the next step's (or the result's) is what it made.
    shapes = [p.get("shape") for _, p in applied] + [final]
    for step, (name, params) in enumerate(applied):
        op = known.get(name)
        if op is not None and isinstance(op, A.ImageOnlyTransform):
            continue
        before = shapes[step]
        after = next((s for s in shapes[step + 1 :] if s is not None), final)
        if name in _SCALE and before is not None:
            sy, sx = after[0] / before[0], after[1] / before[1]
            x0, x1, y0, y1 = x0 * sx, x1 * sx, y0 * sy, y1 * sy
        elif name in _PAD:
            dx, dy = params.get("pad_left", 0), params.get("pad_top", 0)
            x0, x1, y0, y1 = x0 + dx, x1 + dx, y0 + dy, y1 + dy
        elif name in _CROP and "crop_coords" in params:
            pad = params.get("pad_params") or {}
            dx = pad.get("pad_left", 0) - params["crop_coords"][0]
            dy = pad.get("pad_top", 0) - params["crop_coords"][1]
            x0, x1, y0, y1 = x0 + dx, x1 + dx, y0 + dy, y1 + dy
        else:
            raise UnetError(
                f"the evaluation transform's step {step + 1} ({name}) moves pixels in a way "
                "predict/evaluate cannot undo (only resizes, padding and crops can be mapped "
                "back to the original image). Remove it from the augmentation's `val:` list."
            )
    return Geometry(height, width, (x0, y0, x1, y1))


def restore_size(probs: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Per-class probabilities (C, h, w) in model-input space -> (C, H, W) of the original.

    The box is cut out (zeros where it reaches past the input, which only a
    crop can cause) and resized (bilinear) to the original size if it differs.
    """
    channels, h, w = probs.shape
    x0, y0, x1, y1 = (int(round(v)) for v in geometry.box)
    if x1 <= x0 or y1 <= y0:
        raise UnetError(f"internal: empty image box {geometry.box} for a {h}x{w} prediction")
    if (x0, y0, x1, y1) == (0, 0, w, h):
        region = probs
    elif x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        region = probs[:, y0:y1, x0:x1]
    else:
        region = np.zeros((channels, y1 - y0, x1 - x0), dtype=probs.dtype)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            region[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = probs[:, sy0:sy1, sx0:sx1]
    if region.shape[1:] == (geometry.height, geometry.width):
        return np.ascontiguousarray(region)
    size = (geometry.width, geometry.height)
    return np.stack(
        [cv2.resize(np.ascontiguousarray(c), size, interpolation=cv2.INTER_LINEAR) for c in region]
    )
