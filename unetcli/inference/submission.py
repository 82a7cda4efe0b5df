"""The gzip CSV submission, written row by row and renamed into place when complete."""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from types import TracebackType


class SubmissionWriter:
    """Write `img,rle_mask` rows to `<path>.tmp`; on a clean exit rename it to `path`.

    Rows are streamed, so memory does not grow with the number of images; a
    run that fails or is interrupted leaves no file under the final name.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.rows = 0

    def __enter__(self) -> SubmissionWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb")
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(["img", "rle_mask"])
        return self

    def write(self, name: str, rle: str) -> None:
        self._csv.writerow([name, rle])
        self.rows += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._text.close()  # closes the gzip stream too
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
