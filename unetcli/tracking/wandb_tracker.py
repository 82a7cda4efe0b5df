"""Weights & Biases, offline by default: the run's files stay in <run folder>/wandb/ until
the user chooses to `wandb sync` them. Jobs of one sweep share a group (the sweep folder's
name), so W&B's table compares them.

A resumed run (and evaluate or predict of its checkpoint) reopens the same run id. Offline,
W&B cannot ask its server how far the run got, and would count steps from 0 again; W&B
drops rows whose step goes back when the parts are synced, so the step reached is kept in
the checkpoint's record and the next part counts on from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from unetcli.tracking.interface import RunInfo, Tracker, missing_extra


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
        self.next_step = 0  # W&B's step of the next row

    def start(self, info: RunInfo) -> None:
        opts, previous = self.settings, info.previous(self.name).get("id")
        self.next_step = int(info.previous(self.name).get("step", 0))
        self.run = self.wandb.init(
            project=opts["project"], entity=opts["entity"], mode=opts["mode"],
            tags=opts["tags"], dir=str(info.run_dir), name=info.name,
            group=Path(info.group).name if info.group else None,
            id=previous, resume="allow" if previous else None,
            settings=self.wandb.Settings(console="off", silent=True),
        )  # fmt: skip
        self.next_step = max(self.next_step, int(self.run.step))  # online: the server's

    def record(self) -> dict[str, Any]:
        if self.run is None:
            return {}
        return {"id": self.run.id, "step": self.next_step, "settings": self.settings}

    def log(self, values: dict[str, Any]) -> None:
        """One row at the next step (counted on from the part before)."""
        self.run.log(values, step=self.next_step)
        self.next_step += 1

    def params(self, values: dict[str, str]) -> None:
        self.run.config.update(values, allow_val_change=True)

    def tags(self, values: dict[str, str]) -> None:
        self.run.tags = tuple(self.run.tags or ()) + tuple(f"{k}={v}" for k, v in values.items())

    def step(self, loss: float, global_step: int) -> None:
        self.log({"train/loss": loss, "global_step": global_step})

    def metrics(self, values: dict[str, float], step: int) -> None:
        self.log({**values, "epoch": step})

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.log({tag: self.wandb.Image(picture), "epoch": step})

    def text(self, tag: str, text: str) -> None:
        self.run.summary[tag] = text

    def artifacts(self, paths: list[Path], folder: str) -> None:
        files = [p for p in paths if p.is_file()]
        if not files:
            return
        # W&B names take letters, digits, - _ and . only: evaluate/<time> -> evaluate-<time>.
        name = re.sub(r"[^\w.-]", "-", f"{folder or 'run'}-{self.run.id}")
        artifact = self.wandb.Artifact(name, type=folder.split("/")[0] or "run")
        for path in files:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def submission(self, path: Path, folder: str) -> None:
        """The submission's path in the run's summary (W&B uploads an artifact it is given)."""
        self.run.summary["predict/submission"] = str(path.resolve())

    def finish(self, failed: bool) -> None:
        """Close the run and wait until its offline file is whole.

        W&B's service may write the run file's last records after `finish` returns, until
        it is torn down (at exit otherwise): a sweep's job, or anything that reads the file
        while the process goes on, would find it incomplete."""
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)
            self.run = None
            self.wandb.teardown()
