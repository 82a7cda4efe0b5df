"""metrics.csv: one row per epoch, appended and flushed as the run goes."""

from __future__ import annotations

import csv
from pathlib import Path


class MetricsCSV:
    """Append rows of scalars to a CSV whose header is fixed by the first row."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None

    def append(self, row: dict[str, float | int]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a" if not new else "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in self.fields})
