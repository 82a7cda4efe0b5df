"""Reading images and masks from disk, with errors that name the file (numpy and OpenCV only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetcli.core.jpeg import read_jpeg
from unetcli.errors import UnetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3) or grayscale (H, W, 1).

    16-bit (and float) files are read at full depth and stretched to 0-255 per
    image: OpenCV's plain 8-bit read would keep only the high byte, which turns
    a 12-bit microscopy image (values up to 4095) nearly black.
    """
    decoded = read_jpeg(path, channels)  # the faster JPEG decoder, same pixels (core/jpeg.py)
    if decoded is not None:
        return decoded
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise UnetError(
            f"cannot read image {path}: the file is missing, empty or not an image OpenCV "
            "can decode. Replace or remove it."
        )
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if channels == 1:
        return image[..., None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as it is stored (H, W), 8 or 16 bit, without colour conversion."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if mask is None:
        raise UnetError(
            f"cannot read mask {path}: the file is missing, empty or not an image OpenCV "
            "can decode. Replace or remove it."
        )
    return mask


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
