"""The trackers of one run called as one: a service that fails is dropped with one warning.

MLflow behind a server that went down, or W&B on a full disk, must not cost the training:
the first error of such a tracker prints one paragraph and the run goes on without it,
writing its own files (checkpoints, metrics.csv, TensorBoard) as before. Local trackers
(TensorBoard, metrics.csv) and a UnetError still stop the run, as before trackers existed.
"""

from __future__ import annotations

import contextlib
from typing import Any

from unetcli.errors import UnetError, report
from unetcli.tracking.interface import Tracker


class Trackers:
    """Forwards each call to every live tracker."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.live = list(trackers)

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        for tracker in list(self.live):
            try:
                getattr(tracker, method)(*args, **kwargs)
            except UnetError:
                raise
            except Exception as err:  # any failure of a service: it must not stop the run
                if getattr(tracker, "local", False):
                    raise
                self.drop(tracker, method, err)

    def drop(self, tracker: Tracker, method: str, err: Exception) -> None:
        self.live.remove(tracker)
        detail = " ".join(str(err).split())[:300] or type(err).__name__
        report(
            f"the {tracker.name} logger failed ({method}: {type(err).__name__}: {detail}); the "
            f"run goes on without it, writing its checkpoints, metrics.csv and TensorBoard "
            f"events as before. Check logger.{tracker.name} (its server or disk), or leave "
            f"{tracker.name} out of logger=[...].",
            "warning",
        )
        if method != "finish":
            with contextlib.suppress(Exception):  # already reported above
                tracker.finish(True)

    def record(self) -> dict[str, dict]:
        """What checkpoints keep to find the runs again: {tracker name: plain data}."""
        found = {}
        for tracker in self.live:
            try:
                data = tracker.record()
            except Exception:  # a broken tracker is dropped at its next call
                continue
            if data:
                found[tracker.name] = {"target": _target(tracker), **data}
        return found


def _target(tracker: Tracker) -> str:
    return f"{type(tracker).__module__}.{type(tracker).__qualname__}"
