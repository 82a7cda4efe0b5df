"""metrics.csv: one row per epoch, appended and flushed as the run goes."""

from __future__ import annotations

import csv
from pathlib import Path


class MetricsCSV:
    """Append rows of scalars to a CSV whose header is fixed by the first row.

    A run resumed in its own folder (a resumed sweep job) continues the file it
    finds there: the epochs before the first new one are kept, later ones (logged
    after the checkpoint it resumed from) are dropped.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None

    def append(self, row: dict[str, float | int]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
            self._start(int(row["epoch"]) if "epoch" in row else None)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(
                {k: row.get(k, "") for k in self.fields}
            )

    def _start(self, first_epoch: int | None) -> None:
        """Write the header, keeping the earlier epochs of a file with the same columns."""
        kept: list[dict[str, str]] = []
        if first_epoch is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames == self.fields:
                    kept = [r for r in reader if r["epoch"] and int(r["epoch"]) < first_epoch]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(kept)
        tmp.replace(self.path)
