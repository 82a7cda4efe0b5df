"""Where an image lies in the model's input, and mapping predictions back to the original.

NumPy and OpenCV only: `unet predict` and the torch-free ONNX runner
(unetcli.runner) share it, so both give the same pixels back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unetcli.errors import UnetError


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
