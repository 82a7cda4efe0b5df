"""Weights & Biases, offline by default: the run's files stay in <run folder>/wandb/ until
the user chooses to `wandb sync` them. Jobs of one sweep share a group (the sweep folder's
name), so W&B's table compares them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetcli.tracking.base import RunInfo, Tracker, missing_extra


class WandbTracker(Tracker):
    """One W&B run per training run; a resumed run continues the same run id."""

    name = "wandb"

    def __init__(self, project: str, entity: str | None, mode: str, tags: list[str]) -> None:
        try:
            import wandb
        except ImportError as err:
            raise missing_extra("wandb", "wandb", "logger.wandb") from err
        self.wandb = wandb
        self.settings = {"project": project, "entity": entity, "mode": mode, "tags": list(tags)}
        self.run: Any = None

    def start(self, info: RunInfo) -> None:
        opts, previous = self.settings, info.previous(self.name).get("id")
        self.run = self.wandb.init(
            project=opts["project"], entity=opts["entity"], mode=opts["mode"],
            tags=opts["tags"], dir=str(info.run_dir), name=info.name,
            group=Path(info.group).name if info.group else None,
            id=previous, resume="allow" if previous else None,
            settings=self.wandb.Settings(console="off", silent=True),
        )  # fmt: skip

    def record(self) -> dict[str, Any]:
        return {"id": self.run.id, "settings": self.settings} if self.run else {}

    def params(self, values: dict[str, str]) -> None:
        self.run.config.update(values, allow_val_change=True)

    def tags(self, values: dict[str, str]) -> None:
        self.run.tags = tuple(self.run.tags or ()) + tuple(f"{k}={v}" for k, v in values.items())

    def step(self, loss: float, global_step: int) -> None:
        self.run.log({"train/loss": loss, "global_step": global_step})

    def epoch(self, epoch: int, metrics: dict[str, float], lr: float, seconds: float) -> None:
        values = {k: v for k, v in metrics.items() if k != "train/loss"}
        values.update({"train/epoch_loss": metrics["train/loss"], "lr": lr, "seconds": seconds})
        self.metrics(values, epoch)

    def metrics(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, "epoch": step})

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.run.log({tag: self.wandb.Image(picture), "epoch": step})

    def text(self, tag: str, text: str) -> None:
        self.run.summary[tag] = text

    def artifacts(self, paths: list[Path], folder: str) -> None:
        files = [p for p in paths if p.is_file()]
        if not files:
            return
        artifact = self.wandb.Artifact(f"{folder}-{self.run.id}", type=folder)
        for path in files:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def finish(self, failed: bool) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)
            self.run = None
