"""What a run writes as it goes: TensorBoard events and metrics.csv, from the main process."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from unetcli.training.history import MetricsCSV


class RunLog:
    """TensorBoard scalars and images plus one metrics.csv row per epoch.

    Closed on leaving the `with` block however the run ends, so the last
    events reach disk after an error or Ctrl-C too. With `enabled=False`
    (processes other than the main one) nothing is written.
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.writer = SummaryWriter(str(run_dir / "tensorboard")) if enabled else None
        self.history = MetricsCSV(run_dir / "metrics.csv")

    def step(self, loss: float, global_step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, global_step)

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        """Epoch scalars to TensorBoard and a row to metrics.csv."""
        if not self.enabled:
            return
        for key, value in metrics.items():
            if key != "train/loss":
                self.writer.add_scalar(key, value, epoch)
        self.writer.add_scalar("train/epoch_loss", metrics["train/loss"], epoch)
        self.writer.add_scalar("lr", lr, epoch)
        self.writer.flush()
        self.history.append(
            {
                "epoch": epoch,
                **{k.replace("/", "_"): round(v, 6) for k, v in metrics.items()},
                "lr": lr,
                "seconds": round(seconds, 2),
            }
        )

    def image(self, tag: str, picture: np.ndarray, epoch: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, picture, epoch, dataformats="HWC")

    def text(self, tag: str, text: str) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
