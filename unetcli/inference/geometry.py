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

import albumentations as A

from unetcli.core.placement import Geometry, restore_size
from unetcli.errors import UnetError

__all__ = ["Geometry", "geometry_of", "restore_size", "tracked"]

# Transforms that only rescale the whole image.
_SCALE = {"Resize", "LongestMaxSize", "SmallestMaxSize", "RandomScale"}
# Transforms that pad and/or crop by recorded amounts.
_PAD = {"PadIfNeeded", "Pad"}
_CROP = {"CenterCrop", "Crop", "CropNonEmptyMaskIfExists", "RandomCrop"}


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
