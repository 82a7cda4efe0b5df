"""Albumentations transforms the presets in conf/augmentation/ need beyond the library's own."""

from __future__ import annotations

from typing import Any

import albumentations as A


class RandomRotate90KeepShape(A.RandomRotate90):
    """RandomRotate90 that never changes the image's shape.

    A quarter turn of a non-square image swaps its height and width, and a
    batch of differently shaped samples cannot be stacked; on such images the
    odd turns become a half turn (180 degrees). Square images (crops, tiles)
    get all four turns, as with RandomRotate90.
    """

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        height, width = params["shape"][:2]
        if height != width and params["factor"] % 2:
            return {"factor": 2}
        return {}
