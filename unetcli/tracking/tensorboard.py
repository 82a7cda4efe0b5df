"""TensorBoard events in <run folder>/tensorboard/: the run's own files, so a write error
stops the run with one paragraph (as a checkpoint write error does)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unetcli.core.files import write_failed
from unetcli.tracking.interface import RunInfo, Tracker


class TensorBoardTracker(Tracker):
    """Scalars, the example grids and text, as `unet train` has always written them."""

    name = "tensorboard"
    local = True  # a failure is the run's own disk, not a service: it stops the run

    def __init__(self) -> None:
        self.writer: SummaryWriter | None = None

    def start(self, info: RunInfo) -> None:
        try:
            self.writer = SummaryWriter(str(info.run_dir / "tensorboard"))
        except OSError as err:
            raise write_failed(info.run_dir / "tensorboard", "TensorBoard events in", err) from err

    def step(self, loss: float, global_step: int) -> None:
        self.events("add_scalar", "train/loss", loss, global_step)

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        for key, value in metrics.items():
            if key != "train/loss":
                self.events("add_scalar", key, value, epoch)
        self.events("add_scalar", "train/epoch_loss", metrics["train/loss"], epoch)
        self.events("add_scalar", "lr", lr, epoch)
        self.flush()

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.events("add_image", tag, picture, step, dataformats="HWC")

    def text(self, tag: str, text: str) -> None:
        self.events("add_text", tag, text)

    def events(self, method: str, *args: object, **kwargs: object) -> None:
        """Call a SummaryWriter method; a full disk or read-only folder becomes one paragraph.

        TensorBoard writes from a background thread and raises its error at the next call;
        the events written before stay readable (a reader stops at a cut last record).
        """
        if self.writer is None:
            return
        try:
            getattr(self.writer, method)(*args, **kwargs)
        except OSError as err:
            folder = Path(self.writer.log_dir)
            raise write_failed(folder, "TensorBoard events in", err) from err

    def flush(self) -> None:
        self.events("flush")

    def finish(self, failed: bool) -> None:
        if self.writer is not None:
            try:
                self.flush()
            finally:
                writer, self.writer = self.writer, None
                with contextlib.suppress(OSError):  # already reported by flush()
                    writer.close()
