"""What a run writes as it goes: TensorBoard events and metrics.csv, from the main process."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unetcli.core.files import write_failed
from unetcli.training.history import MetricsCSV


class RunLog:
    """TensorBoard scalars and images plus one metrics.csv row per epoch.

    Closed on leaving the `with` block however the run ends, so the last
    events reach disk after an error or Ctrl-C too. With `enabled=False`
    (processes other than the main one) nothing is written.
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.writer = None
        if enabled:
            try:
                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except OSError as err:
                raise write_failed(run_dir / "tensorboard", "TensorBoard events in", err) from err
        self.history = MetricsCSV(run_dir / "metrics.csv")

    def step(self, loss: float, global_step: int) -> None:
        if self.writer is not None:
            self.events("add_scalar", "train/loss", loss, global_step)

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        """Epoch scalars to TensorBoard and a row to metrics.csv."""
        if not self.enabled:
            return
        for key, value in metrics.items():
            if key != "train/loss":
                self.events("add_scalar", key, value, epoch)
        self.events("add_scalar", "train/epoch_loss", metrics["train/loss"], epoch)
        self.events("add_scalar", "lr", lr, epoch)
        self.flush()
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

    def image(self, tag: str, picture: np.ndarray, epoch: int) -> None:
        if self.writer is not None:
            self.events("add_image", tag, picture, epoch, dataformats="HWC")

    def text(self, tag: str, text: str) -> None:
        if self.writer is not None:
            self.events("add_text", tag, text)

    def events(self, method: str, *args: object, **kwargs: object) -> None:
        """Call a SummaryWriter method; a full disk or read-only folder becomes one paragraph.

        TensorBoard writes from a background thread and raises its error at the next call;
        the events written before stay readable (a reader stops at a cut last record).
        """
        try:
            getattr(self.writer, method)(*args, **kwargs)
        except OSError as err:
            folder = Path(self.writer.log_dir)
            raise write_failed(folder, "TensorBoard events in", err) from err

    def flush(self) -> None:
        if self.writer is not None:
            self.events("flush")

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.flush()
            finally:
                writer, self.writer = self.writer, None
                with contextlib.suppress(OSError):  # already reported by flush()
                    writer.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
