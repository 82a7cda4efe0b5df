"""What a run writes as it goes, from the main process: metrics.csv and the chosen loggers.

The loggers (`logger=[tensorboard,mlflow]`, conf/logger/) are `unetcli.tracking` trackers
behind one interface; TensorBoard alone when none are given, metrics.csv always.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

from unetcli.errors import UnetError
from unetcli.tracking.build import build_trackers
from unetcli.tracking.interface import RunInfo, Tracker
from unetcli.tracking.tensorboard import TensorBoardTracker
from unetcli.tracking.trackers import Trackers


class RunLog:
    """Scalars, images, text and artifacts to every tracker of the run.

    Closed on leaving the `with` block however the run ends, so the last events reach disk
    after an error or Ctrl-C too (and a tracker's run is marked failed). With
    `enabled=False` (processes other than the main one) nothing is written.
    """

    def __init__(
        self,
        run_dir: Path,
        enabled: bool = True,
        trackers: list[Tracker] | None = None,
        info: RunInfo | None = None,
    ) -> None:
        self.enabled = enabled
        if trackers is None:  # TensorBoard, then metrics.csv after the events
            trackers = [TensorBoardTracker(), *build_trackers(None)]
        self.trackers = Trackers(trackers if enabled else [])
        self.trackers.call("start", info or RunInfo(Path(run_dir), Path(run_dir).name))

    def params(self, values: dict[str, str], tags: dict[str, str]) -> None:
        self.trackers.call("params", values)
        self.trackers.call("tags", tags)

    def step(self, loss: float, global_step: int) -> None:
        self.trackers.call("step", loss, global_step)

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        """Epoch scalars to the trackers and a row to metrics.csv."""
        self.trackers.call("epoch", epoch, metrics, lr, seconds)

    def image(self, tag: str, picture: np.ndarray, epoch: int) -> None:
        self.trackers.call("image", tag, picture, epoch)

    def text(self, tag: str, text: str) -> None:
        self.trackers.call("text", tag, text)

    def artifacts(self, paths: list[Path], folder: str) -> None:
        self.trackers.call("artifacts", paths, folder)

    def record(self) -> dict[str, dict]:
        """Plain data finding the trackers' runs again, for the checkpoint."""
        return self.trackers.record()

    def close(self, failed: bool = False) -> None:
        """Finish every tracker, even after one failed to (its error is raised after)."""
        live, self.trackers = self.trackers.live, Trackers([])
        error: UnetError | None = None
        for tracker in live:
            try:
                Trackers([tracker]).call("finish", failed)
            except UnetError as err:
                error = error or err
        if error is not None:
            raise error

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)
