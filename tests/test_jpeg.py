"""JPEGs decoded by simplejpeg come out exactly as OpenCV decodes them, and the files it must
not decode (turned by EXIF, not JPEG at all) go to OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from unetcli.core import jpeg
from unetcli.core.images import read_image
from unetcli.errors import UnetError


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:45, 0:70]
    image = np.stack([xx * 3, yy * 5, (xx + yy) % 256], -1) + rng.integers(0, 30, (45, 70, 3))
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), image.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


@pytest.mark.parametrize("channels", [3, 1])
def test_same_pixels_as_opencv(photo, channels):
    ours = jpeg.read_jpeg(photo, channels)
    assert ours is not None  # simplejpeg took it
    if channels == 3:
        theirs = cv2.cvtColor(cv2.imread(str(photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    else:
        theirs = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)[..., None]
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs)
    assert np.array_equal(read_image(photo, channels), theirs)


def test_a_file_turned_by_exif_is_read_by_opencv(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(np.zeros((20, 50, 3), np.uint8)).save(path, exif=exif)
    assert jpeg.exif_orientation(path.read_bytes()) == 6
    assert jpeg.read_jpeg(path, 3) is None
    assert read_image(path, 3).shape == (50, 20, 3)  # OpenCV turned it upright


def test_a_broken_jpeg_is_named_by_the_usual_error(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert jpeg.read_jpeg(path, 3) is None
    with pytest.raises(UnetError, match="cannot read image"):
        read_image(path, 3)


def test_reduced_decode_takes_the_smallest_scale_that_is_large_enough(photo):
    small = jpeg.decode_reduced(photo, 3, min_height=10, min_width=17)
    assert small.shape == (12, 18, 3)  # 1/4 of 45x70, rounded up
