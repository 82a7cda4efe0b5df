"""Reading images and masks from disk, after their headers passed `limits.max_image_pixels`.

The decoding itself lives in unetcli.core.images, outside this package, so that the torch-free
runner (unetcli.runner) reads images exactly as training did without importing the dataset
layouts (and their PIL and tqdm); the header check needs PIL, so it is added here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetcli.core import images as image_io
from unetcli.core.images import IMAGE_EXTENSIONS, list_images
from unetcli.core.limits import check_image_header

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_image", "read_mask"]


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """`image_io.read_image`, refusing a decompression bomb before it is decoded."""
    check_image_header(path)
    return image_io.read_image(path, channels)


def read_mask(path: str | Path) -> np.ndarray:
    """`image_io.read_mask`, refusing a decompression bomb before it is decoded."""
    check_image_header(path)
    return image_io.read_mask(path)
