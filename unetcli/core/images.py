"""Reading images and masks from disk, with errors that name the file (numpy and OpenCV only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetcli.core.jpeg import read_jpeg
from unetcli.core.tiff import is_tiff, kept_dtype, read_channels
from unetcli.errors import UnetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as (H, W, channels) in its own dtype: uint8, uint16 or float32.

    8-bit photographs come as RGB (channels 3) or grey (channels 1), as OpenCV reads them.
    TIFFs and any other channel count go through unetcli.core.tiff (multi-page and
    N-channel stacks). Values are kept as stored (a 12-bit microscopy image stays 0..4095)
    until the dataset's normalisation (unetcli.core.normalisation) maps them.
    """
    if is_tiff(path) or channels not in (1, 3):
        return read_channels(path, channels)
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
    image = kept_dtype(image)
    if channels == 1:
        return image[..., None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_picture(image: np.ndarray) -> np.ndarray:
    """An image of any dtype and channel count as uint8 RGB for pictures (galleries, overlays):
    deeper data stretched from its minimum to its maximum, N channels shown by their first
    (grey) or first three."""
    if image.dtype != np.uint8:
        values = image.astype(np.float32)
        low, high = float(values.min()), float(values.max())
        image = ((values - low) * (255.0 / max(high - low, 1e-12))).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] >= 3:
        return np.ascontiguousarray(image[..., :3])
    return np.repeat(image[..., :1], 3, axis=2)


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
