"""MLflow: a local store under the output root by default, or a tracking server.

The default store is `<paths.output_root>/mlruns/`: a SQLite file (MLflow's file store is in
maintenance mode and refuses to start unless told to) and the artifacts beside it, so
nothing leaves the machine. Jobs of one sweep are children of one parent run, found (or
created) by the sweep folder's tag, so each job finds the same parent on its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from unetcli.tracking.interface import RunInfo, Tracker, missing_extra
from unetcli.tracking.mlflow_links import MEMBERS_TAG, gathering_parent, submission_trace

SWEEP_TAG = "unet.sweep"
PARENT_TAG = "unet.parent"


class MLflowTracker(Tracker):
    """One MLflow run per training run; the parent of its sweep when it has a group."""

    name = "mlflow"

    def __init__(
        self,
        store: str,
        tracking_uri: str | None,
        experiment_name: str,
        log_submission: bool = False,  # absent from checkpoints written before the key
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise missing_extra("mlflow", "mlflow", "logger.mlflow") from err
        self.store = Path(store)
        self.uri = tracking_uri or f"sqlite:///{self.store.resolve() / 'mlflow.db'}"
        self.experiment_name = experiment_name
        self.log_submission = bool(log_submission)
        self.client_class = MlflowClient
        self.run_id = ""
        self.pending: list[Any] = []  # step losses, sent with the epoch's metrics

    def start(self, info: RunInfo) -> None:
        if not str(self.uri).startswith(("http:", "https:", "databricks")):
            self.store.mkdir(parents=True, exist_ok=True)
        self.client = self.client_class(tracking_uri=self.uri)
        previous = info.previous(self.name)
        if previous.get("run_id") and previous.get("tracking_uri") == self.uri:
            self.run_id = previous["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.experiment_id()
        tags = {}
        if info.group:
            tags = {SWEEP_TAG: info.group, "mlflow.parentRunId": self.parent(experiment, info)}
        run = self.client.create_run(experiment, run_name=info.name, tags=tags)
        self.run_id = run.info.run_id

    def start_linked(self, info: RunInfo, records: list[dict[str, Any]]) -> None:
        """The parent run gathering exactly these runs, reopened; else a new run (a child of
        the members' sweep when they have one) tagged with the member run ids."""
        members = [r["run_id"] for r in records
                   if r.get("run_id") and r.get("tracking_uri") == self.uri]  # fmt: skip
        self.client = self.client_class(tracking_uri=self.uri)
        parent = gathering_parent(self.client, members)
        if parent is not None:
            self.start(RunInfo(info.run_dir, info.name, resume={self.name: self.record_of(parent)}))
            return
        self.start(info)
        self.client.set_tag(self.run_id, MEMBERS_TAG, ",".join(members))

    def experiment_id(self) -> str:
        """The experiment by name, created on first use (a parallel job may win the race)."""
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:"):
            location = (self.store.resolve() / "artifacts").as_uri()
        try:
            return self.client.create_experiment(self.experiment_name, location)
        except Exception:  # created meanwhile by another job of the sweep
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is None:
                raise
            return found.experiment_id

    def parent(self, experiment: str, info: RunInfo) -> str:
        """The sweep's parent run: the oldest one tagged with the sweep folder, or a new one.

        Two jobs starting together may both create one; each then keeps the oldest and
        the younger duplicate is deleted, so the sweep ends with one parent.
        """
        query = f"tags.`{SWEEP_TAG}` = '{info.group}' and tags.`{PARENT_TAG}` = 'true'"
        found = self.client.search_runs([experiment], query, order_by=["attributes.start_time"])
        if found:
            return found[0].info.run_id
        name = Path(str(info.group)).name
        made = self.client.create_run(
            experiment, run_name=name, tags={SWEEP_TAG: info.group, PARENT_TAG: "true"}
        ).info.run_id
        self.client.set_terminated(made)
        found = self.client.search_runs([experiment], query, order_by=["attributes.start_time"])
        oldest = found[0].info.run_id if found else made
        if oldest != made:
            self.client.delete_run(made)
        return oldest

    def record(self) -> dict[str, Any]:
        return self.record_of(self.run_id)

    def record_of(self, run_id: str) -> dict[str, Any]:
        """What finds `run_id` again, with the settings that rebuild this tracker."""
        return {"run_id": run_id, "tracking_uri": self.uri,
                "settings": {"store": str(self.store), "tracking_uri": self.uri,
                             "experiment_name": self.experiment_name,
                             "log_submission": self.log_submission}}  # fmt: skip

    def params(self, values: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in values.items()]
        existing = self.client.get_run(self.run_id).data.params  # a resumed run has them
        items = [p for p in items if p.key not in existing]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def tags(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.client.set_tag(self.run_id, key, value)

    def step(self, loss: float, global_step: int) -> None:
        from mlflow.entities import Metric

        self.pending.append(Metric("train/loss", loss, int(time.time() * 1000), global_step))

    def metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = self.pending + [Metric(k, float(v), now, step) for k, v in values.items()]
        self.pending = []
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.client.log_image(self.run_id, picture, f"images/{tag}/step_{step:04d}.png")

    def text(self, tag: str, text: str) -> None:
        self.client.log_text(self.run_id, text, f"{tag}.txt")

    def artifacts(self, paths: list[Path], folder: str) -> None:
        for path in paths:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), folder)

    def submission(self, path: Path, folder: str) -> None:
        """Tags that trace the file; the file itself with logger.mlflow.log_submission."""
        trace = submission_trace(path)
        for key, value in trace.items():
            self.client.set_tag(self.run_id, key, value)
        lines = "".join(f"{key}: {value}\n" for key, value in trace.items())
        self.client.log_text(self.run_id, lines, f"{folder}/submission.txt")
        if self.log_submission:
            self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, failed: bool) -> None:
        if self.pending:
            self.metrics({}, 0)
        if self.run_id:
            self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
