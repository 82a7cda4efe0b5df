"""metrics.csv: one row per epoch. Always written (sweep summaries and tests read it), so
`logger=[mlflow]` keeps it too."""

from __future__ import annotations

from unetcli.core.files import write_failed
from unetcli.tracking.history import MetricsCSV
from unetcli.tracking.interface import RunInfo, Tracker


class CSVTracker(Tracker):
    """The epoch table of the run folder; a write error stops the run (its own disk)."""

    name = "csv"
    local = True

    def __init__(self) -> None:
        self.history: MetricsCSV | None = None

    def start(self, info: RunInfo) -> None:
        self.history = MetricsCSV(info.run_dir / "metrics.csv")

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        assert self.history is not None
        row = {
            "epoch": epoch,
            **{k.replace("/", "_"): round(v, 6) for k, v in metrics.items()},
            "lr": lr,
            "seconds": round(seconds, 2),
        }
        try:
            self.history.append(row)
        except OSError as err:
            raise write_failed(self.history.path, "the metrics table", err) from err
