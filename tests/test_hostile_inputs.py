"""Hostile input files are refused with one paragraph before they cost memory or escape a folder:
a decompression-bomb PNG, zip members that leave the folder or are links, RLE rows with bad
runs, a submission line of 10^6 columns or of endless length."""

from __future__ import annotations

import gzip
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.helpers import compose
from unetcli.core.limits import CURRENT, apply_limits
from unetcli.datasets.io import read_image, read_mask
from unetcli.download.archive import unpack
from unetcli.errors import UnetError
from unetcli.submission.reader import submission_rows
from unetcli.submission.rle import rle_decode, rle_encode


@pytest.fixture(autouse=True)
def default_limits():
    """Each test starts from the limits conf/base.yaml states, and leaves them so."""
    apply_limits(compose("predict", ["checkpoint=x"]).limits)
    yield
    apply_limits(compose("predict", ["checkpoint=x"]).limits)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG of a few hundred bytes whose header claims side x side RGB pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * 4096)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1000
    for read in (read_image, read_mask):
        with pytest.raises(UnetError) as err:
            read(path)
        message = str(err.value)
        assert str(path) in message and "100000x100000" in message
        assert "limits.max_image_pixels=200,000,000" in message


def test_the_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), np.zeros((40, 50, 3), np.uint8))
    assert read_image(path).shape == (40, 50, 3)
    apply_limits(OmegaConf.create({"max_image_pixels": 1999, "max_csv_line_mb": 1}))
    with pytest.raises(UnetError, match="50x40 = 2,000 pixels"):
        read_image(path)


def zip_with(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "name, mode, why",
    [
        ("../../escaped.txt", None, "leaves the folder"),
        ("/tmp/absolute.txt", None, "leaves the folder"),
        ("train/link", stat.S_IFLNK | 0o777, "symbolic link"),
    ],
)
def test_zip_members_that_escape_or_link_are_refused_before_anything_is_written(
    tmp_path, name, mode, why
):
    archive = zip_with(tmp_path / "evil.zip", name, b"/etc/passwd", mode)
    staging = tmp_path / "deep" / "staging"
    with pytest.raises(UnetError, match=why) as err:
        unpack(archive, staging)
    assert "evil.zip" in str(err.value) and name in str(err.value)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not any(p.is_file() for p in staging.rglob("*"))  # not even the good member


@pytest.mark.parametrize(
    "rle, what",
    [
        ("1 5 3 2", "overlaps"),
        ("10 2 1 2", "overlaps or precedes"),
        ("0 3", "outside"),
        ("19 3", "outside"),
        ("5 -2", "negative length"),
        ("1 99999999999999999999999", "not a whole number"),
        ("1 2 3", "odd number"),
    ],
)
def test_rle_rows_with_bad_runs_are_refused(rle, what):
    with pytest.raises(ValueError, match=what):
        rle_decode(rle, (4, 5))


def test_valid_rle_still_round_trips():
    mask = np.zeros((4, 5), np.uint8)
    mask[0, 0] = mask[1, 2:] = mask[3, 4] = 1
    assert (rle_decode(rle_encode(mask), mask.shape) == mask).all()


def test_a_submission_line_of_a_million_columns_is_refused(tmp_path):
    path = tmp_path / "wide.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("img,rle_mask\n")
        f.write("a.jpg," + ",".join(["1 2"] * 1_000_000) + "\n")
    with pytest.raises(UnetError, match=r"line 2 has 1,000,001 columns"):
        list(submission_rows(path))


def test_an_endless_submission_line_is_refused_after_reading_the_limit(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("img,rle_mask\na.jpg," + "1 2 " * 400_000 + "\n")
    apply_limits(OmegaConf.create({"max_image_pixels": 1, "max_csv_line_mb": 1}))
    assert CURRENT.max_csv_line_bytes == 2**20
    with pytest.raises(UnetError, match=r"line 2 is longer than limits.max_csv_line_mb=1 MiB"):
        list(submission_rows(path))


def test_a_header_of_many_columns_is_refused_without_printing_them(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(",".join(["img"] * 100_000) + "\n")
    with pytest.raises(UnetError) as err:
        list(submission_rows(path))
    assert "100,000 columns" in str(err.value) and len(str(err.value)) < 400
