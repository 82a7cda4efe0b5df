"""Reading a Kaggle-format submission and finding each row's true mask, to score it locally."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

from unetcli.datasets.io import IMAGE_EXTENSIONS, list_images
from unetcli.errors import UnetError


def open_submission(path: Path) -> io.TextIOBase:
    """A text stream of the CSV, gzip or plain (told apart by the file's first bytes)."""
    if not path.is_file():
        raise UnetError(f"evaluate.submission={path} does not exist; point it at a CSV or .csv.gz")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def submission_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(row number, image name, rle) for each row, checking the header and duplicates."""
    seen: set[str] = set()
    # A speckled full-size mask's row can exceed csv's 128 kB default field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with open_submission(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["img", "rle_mask"]:
            raise UnetError(
                f"{path} does not start with the header img,rle_mask (found {header}); "
                "a Kaggle Carvana submission has those two columns"
            )
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise UnetError(f"{path} line {number} has no rle_mask column: {row}")
            name = row[0]
            if name in seen:
                raise UnetError(
                    f"{path} lists {name} twice (again on line {number}); Kaggle rejects "
                    "submissions with repeated images"
                )
            seen.add(name)
            yield number, name, row[1]


def mask_index(folder: Path) -> dict[str, Path]:
    """Mask files by the stem of the image they belong to (`<stem>_mask.gif` or `<stem>.png`)."""
    if not folder.is_dir():
        raise UnetError(
            f"evaluate.masks={folder} is not a folder; point it at the folder of true masks "
            "(e.g. train_masks/, or test_masks/ of the synthetic set)"
        )
    index: dict[str, Path] = {}
    for path in list_images(folder):
        stem = path.stem
        if stem.endswith("_mask"):
            stem = stem[: -len("_mask")]
        index.setdefault(stem, path)
    if not index:
        raise UnetError(
            f"evaluate.masks={folder} holds no mask images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return index


def image_index(folder: Path | None) -> dict[str, Path]:
    """Images by stem, for the gallery's image column (empty without evaluate.images)."""
    if folder is None:
        return {}
    if not folder.is_dir():
        raise UnetError(f"evaluate.images={folder} is not a folder of images")
    return {p.stem: p for p in list_images(folder)}
