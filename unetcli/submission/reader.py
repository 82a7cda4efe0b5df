"""Reading a Kaggle-format submission (CSV or .csv.gz) row by row, checked as it is read."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

from unetcli.core.limits import CURRENT
from unetcli.errors import UnetError


def open_submission(path: Path) -> io.TextIOBase:
    """A text stream of the CSV, gzip or plain (told apart by the file's first bytes)."""
    if not path.is_file():
        raise UnetError(f"submission={path} does not exist; point it at a CSV or .csv.gz")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def bounded_lines(f: io.TextIOBase, path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) with each line read at most limits.max_csv_line_bytes long.

    csv.reader would hold a line of any length in memory; a hostile file of one endless line
    (or 10^6 columns) is refused here after reading only the limit.
    """
    limit = CURRENT.max_csv_line_bytes
    for number in itertools.count(1):
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            raise UnetError(
                f"{path} line {number} is longer than limits.max_csv_line_mb="
                f"{limit / 2**20:g} MiB; a submission row is img,rle_mask and even a "
                "full-size speckled mask is shorter. Is it the right file? Raise "
                "limits.max_csv_line_mb if the row is real."
            )
        yield number, line


def parse_row(line: str, number: int, path: Path) -> list[str]:
    """One CSV row of a submission, which has exactly two columns."""
    row = next(csv.reader([line]), [])
    if len(row) > 2:
        raise UnetError(
            f"{path} line {number} has {len(row):,} columns; a submission has two "
            "(img,rle_mask). Check the separator (a comma) and that rle_mask is not split."
        )
    return row


def submission_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(row number, image name, rle) for each row, checking the header and duplicates."""
    seen: set[str] = set()
    csv.field_size_limit(max(csv.field_size_limit(), CURRENT.max_csv_line_bytes + 1))
    with open_submission(path) as f:
        lines = bounded_lines(f, path)
        first = next(lines, None)
        header = None if first is None else next(csv.reader([first[1]]), [])
        if header is None or [h.strip() for h in header] != ["img", "rle_mask"]:
            shown = header if header is None or len(header) < 10 else f"{len(header):,} columns"
            raise UnetError(
                f"{path} does not start with the header img,rle_mask (found {shown}); "
                "a Kaggle Carvana submission has those two columns"
            )
        for number, line in lines:
            row = parse_row(line, number, path)
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
