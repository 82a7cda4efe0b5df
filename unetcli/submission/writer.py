"""The gzip CSV submission: streamed, resumable, and renamed into place only when complete.

The file is a sequence of gzip members (a valid gzip file: `gunzip`, pandas
and Python's gzip module read it as one stream). A member is closed and
flushed to disk every `rows_per_member` rows or `seconds_per_member` seconds,
so a run that is killed at any moment leaves `<name>.tmp` holding whole
members plus at most one torn one. `resume=True` finds the last complete
member, cuts the file there, checks that its rows are the first rows expected,
and continues after them. `write_rows` keeps an image's rows (one per class
for a multilabel task) in one member, so a resumed file ends on an image.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from unetcli.core.files import write_failed
from unetcli.core.task import Task
from unetcli.errors import UnetError

HEADER = "img,rle_mask"


def image_rows(file_name: str, task: Task) -> list[str]:
    """The submission rows of one image: its file name, or `<name>_<k>` per multilabel class k."""
    if task.multilabel:
        return [f"{file_name}_{task.class_number(c)}" for c in range(task.num_classes)]
    return [file_name]


def _field(name: str) -> str:
    """A CSV field: quoted only if it holds a comma, quote or line break."""
    if any(c in name for c in ',"\r\n'):
        return '"' + name.replace('"', '""') + '"'
    return name


def _name_of(line: str) -> str:
    """The first CSV field of one row (an image name)."""
    if line.startswith('"'):
        return next(csv.reader([line]))[0]
    return line.split(",", 1)[0]


def complete_prefix(path: Path, expected: Sequence[str]) -> tuple[int, int]:
    """(bytes, rows) of the whole gzip members at the start of `path`.

    Reads member by member (memory stays flat, whatever the file size) and
    checks each row's image name against `expected`, in order.
    """
    good_bytes, rows, consumed = 0, 0, 0
    header_seen = False
    pending: list[bytes] = []
    decoder = zlib.decompressobj(wbits=31)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            data = chunk
            while data:
                try:
                    pending.append(decoder.decompress(data))
                except zlib.error:
                    return good_bytes, rows  # a torn or damaged member: keep what came before
                if not decoder.eof:
                    consumed += len(data)
                    break
                consumed += len(data) - len(decoder.unused_data)
                data = decoder.unused_data
                decoder = zlib.decompressobj(wbits=31)
                text = b"".join(pending).decode("utf-8", errors="replace")
                pending = []
                if not text.endswith("\n"):
                    return good_bytes, rows  # members end at row ends; this one is damaged
                for line in text.splitlines():
                    if not header_seen:
                        if line != HEADER:
                            raise UnetError(
                                f"{path} does not start with the header {HEADER!r}; it is not a "
                                "submission this command wrote. Move it away or choose another "
                                "predict.output_dir."
                            )
                        header_seen = True
                        continue
                    name = _name_of(line)
                    if rows >= len(expected) or name != expected[rows]:
                        wanted = expected[rows] if rows < len(expected) else "no more rows"
                        raise UnetError(
                            f"cannot resume {path}: its row {rows + 1} is {name!r} but this run "
                            f"would write {wanted!r} there, so it was started with other input "
                            "images or another order. Resume with the same checkpoint and inputs, "
                            "or choose another predict.output_dir."
                        )
                    rows += 1
                good_bytes = consumed
    return good_bytes, rows


class SubmissionWriter:
    """Write `img,rle_mask` rows to `<path>.tmp`; on a clean exit rename it to `path`.

    Rows are streamed, so memory does not grow with the number of images; a
    run that fails or is interrupted leaves no file under the final name, and
    its `.tmp` can be resumed (see the module docstring).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resume: bool = False,
        expected: Sequence[str] = (),
        rows_per_member: int = 256,
        seconds_per_member: float = 10.0,
        compresslevel: int = 6,
    ) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.resume = resume
        self.expected = expected
        self.rows_per_member = max(1, int(rows_per_member))
        self.seconds_per_member = seconds_per_member
        self.compresslevel = compresslevel
        self.rows = 0
        self.resumed_rows = 0
        self._member: gzip.GzipFile | None = None
        self._member_rows = 0
        self._member_started = 0.0

    def __enter__(self) -> SubmissionWriter:
        try:
            self._open()
        except OSError as err:
            raise write_failed(self.path, "submission", err) from err
        return self

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.resume and self.tmp.is_file():
            good_bytes, rows = complete_prefix(self.tmp, self.expected)
            self._raw = open(self.tmp, "r+b")  # noqa: SIM115  (closed in __exit__)
            self._raw.truncate(good_bytes)
            self._raw.seek(good_bytes)
            self.rows = self.resumed_rows = rows
            if good_bytes == 0:
                self._write_header()
        else:
            self._raw = open(self.tmp, "wb")  # noqa: SIM115  (closed in __exit__)
            self._write_header()

    def _write_header(self) -> None:
        self._open_member()
        assert self._member is not None
        self._member.write(f"{HEADER}\n".encode())
        self._close_member()

    def _open_member(self) -> None:
        self._member = gzip.GzipFile(
            fileobj=self._raw, mode="wb", compresslevel=self.compresslevel, mtime=0
        )
        self._member_rows = 0
        self._member_started = time.monotonic()

    def _close_member(self) -> None:
        """Finish the open member and push it to disk: from here on its rows survive a kill."""
        if self._member is None:
            return
        self._member.close()  # writes the member's trailer; the file itself stays open
        self._member = None
        self._raw.flush()
        os.fsync(self._raw.fileno())

    def write(self, name: str, rle: str) -> None:
        self.write_rows([(name, rle)])

    def write_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        """Write one image's rows together: a member never ends between them, so a
        resumed file holds whole images (multilabel: one row per class)."""
        if self._member is None:
            self._open_member()
        assert self._member is not None
        for name, rle in rows:
            self._member.write(f"{_field(name)},{rle}\n".encode())
        self.rows += len(rows)
        self._member_rows += len(rows)
        if (
            self._member_rows >= self.rows_per_member
            or time.monotonic() - self._member_started >= self.seconds_per_member
        ):
            self._close_member()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close_member()  # also on failure: the rows written so far stay resumable
            self._raw.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        except OSError as err:
            raise write_failed(self.path, "submission", err) from err
        if isinstance(exc, OSError) and exc.errno is not None:
            raise write_failed(self.path, "submission", exc) from exc


def part_path(path: Path, rank: int, world_size: int) -> Path:
    """Where process `rank` of `world_size` writes its block of a submission's rows."""
    return path.with_name(f"{path.name}.part{rank + 1}of{world_size}")


def _rest_after_header(f) -> bytes:
    """Read past the first gzip member of `f` (the header row); the bytes read beyond it."""
    decoder = zlib.decompressobj(wbits=31)
    while not decoder.eof:
        chunk = f.read(1 << 16)
        if not chunk:
            raise UnetError(f"{f.name} ends inside its header; delete it and predict again")
        decoder.decompress(chunk)
    return decoder.unused_data


def join_parts(parts: Sequence[Path], path: Path) -> None:
    """Concatenate the parts' gzip members, in order and with one header, into `path`.

    gzip members concatenate into one valid gzip file, so the result
    decompresses to exactly the rows one process would have written. The
    parts (which this command wrote) are removed once `path` is in place.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        for number, part in enumerate(parts):
            with open(part, "rb") as f:
                if number:
                    out.write(_rest_after_header(f))
                shutil.copyfileobj(f, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    for part in parts:
        part.unlink()
