"""Limits on what a hostile or broken input file may cost before it is refused.

The values come from the `limits` node of conf/base.yaml (every command has it); each command
calls `apply_limits(cfg.limits)` first. They are process-wide, so DataLoader workers (forked)
share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from unetcli.errors import UnetError


@dataclass
class Limits:
    """The values in force (conf/base.yaml states the defaults; these are used before)."""

    max_image_pixels: int = 200_000_000
    max_csv_line_bytes: int = 64 * 2**20


CURRENT = Limits()
# Pillow's own bomb check (a warning, then an error at 179 M pixels) is replaced by ours,
# which names the file and the setting.
Image.MAX_IMAGE_PIXELS = None


def apply_limits(limits) -> None:
    """Put the `limits` config node in force for this process."""
    CURRENT.max_image_pixels = int(limits.max_image_pixels)
    CURRENT.max_csv_line_bytes = int(limits.max_csv_line_mb * 2**20)


def check_image_header(path: str | Path) -> None:
    """Refuse an image whose header claims more pixels than limits.max_image_pixels, unread.

    Only the header is parsed (Pillow opens lazily), so a 100,000 x 100,000 PNG of a few
    kilobytes costs microseconds instead of 30 GB. Formats Pillow cannot parse pass through
    to OpenCV, whose own limit (CV_IO_MAX_IMAGE_PIXELS, 2^30) then applies.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return
    if width * height > CURRENT.max_image_pixels:
        raise UnetError(
            f"refusing to decode image {path}: its header claims {width}x{height} = "
            f"{width * height:,} pixels, more than limits.max_image_pixels="
            f"{CURRENT.max_image_pixels:,} (decoding it would need about "
            f"{width * height * 3 / 2**30:.1f} GiB). It is probably damaged or hostile; remove "
            "it, or raise limits.max_image_pixels if the image is real."
        )
