"""JPEG decoding through simplejpeg (libjpeg-turbo's TurboJPEG API), OpenCV's where it cannot.

Measured on a 1918x1280 Carvana-like JPEG (docs/benchmarks.md, "JPEG decoding"): simplejpeg
decodes straight to RGB in about 60% of the time OpenCV's imread plus its BGR-to-RGB
conversion takes, with identical pixels (both are libjpeg-turbo with the same IDCT and
upsampling). OpenCV stays the reader of everything simplejpeg does not take: when the package
is missing, for a file it refuses (12-bit, CMYK, damaged), and for a file whose EXIF
orientation is not upright (OpenCV turns it; simplejpeg would not).

`decode_reduced` decodes in the DCT domain at 1/2, 1/4 or 1/8 of the size (1918x1280 straight
to 480x320 in half the time of a full decode and a resize); its pixels are not those of a
full decode and a linear resize, so nothing that must match training uses it unasked.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

try:
    import simplejpeg
except ImportError:  # an optional speed-up; OpenCV reads every JPEG too
    simplejpeg = None

JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_jpeg(path: str | Path, channels: int) -> np.ndarray | None:
    """An RGB (H, W, 3) or grey (H, W, 1) uint8 image, or None where OpenCV must read it."""
    return decode_reduced(path, channels, 0, 0)  # no size floor: the full-size decode


def decode_reduced(
    path: str | Path, channels: int, min_height: int, min_width: int
) -> np.ndarray | None:
    """The image decoded at the smallest of 1/1, 1/2, 1/4, 1/8 scale that is still at least
    min_height x min_width, or None where OpenCV must read it."""
    data = _upright_jpeg_bytes(path, channels)
    if data is None:
        return None
    try:
        image = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if channels == 1 else "RGB",
            min_height=min_height,
            min_width=min_width,
        )
    except ValueError:
        return None
    return image.reshape(*image.shape[:2], channels)


def _upright_jpeg_bytes(path: str | Path, channels: int) -> bytes | None:
    """The file's bytes when simplejpeg may decode it: installed, a .jpg/.jpeg, 1 or 3
    channels, and no EXIF orientation other than upright."""
    if simplejpeg is None or channels not in (1, 3):
        return None
    if Path(path).suffix.lower() not in JPEG_SUFFIXES:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None  # OpenCV's reader reports the file
    if not data.startswith(b"\xff\xd8") or exif_orientation(data) not in (None, 1):
        return None
    return data


def exif_orientation(data: bytes) -> int | None:
    """The EXIF orientation tag (0x0112) of a JPEG's bytes, None without one.

    Walks the markers before the image data to the APP1 "Exif" segment and reads IFD0.
    """
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no EXIF before them
            return None
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _orientation_in_tiff(segment[6:])
        pos += 2 + length
    return None


def _orientation_in_tiff(tiff: bytes) -> int | None:
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, _kind, _n = struct.unpack(order + "HHI", entry[:8])
            if tag == 0x0112:
                return struct.unpack(order + "H", entry[8:10])[0]
    except (KeyError, struct.error):
        return 0  # unreadable EXIF: let OpenCV decide
    return None
