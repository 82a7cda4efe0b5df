"""Where MLflow keeps what is made from several runs or from a checkpoint afterwards.

An ensemble's out-of-fold score belongs to the sweep that trained its folds: when the fold
runs are exactly the children of one parent run, the parent gets the score, so the sweep's
row in MLflow's table shows its cross-validation result. A submission is traced by path,
size and SHA-256 even when the file itself is not uploaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

PARENT_ID_TAG = "mlflow.parentRunId"
# Runs made by an evaluation of several runs (not trained): left out of a parent's folds.
MEMBERS_TAG = "unet.members"


def gathering_parent(client: Any, run_ids: list[str]) -> str | None:
    """The parent run whose trained children are exactly `run_ids`, else None.

    A grid of learning rates times folds has one parent over all its jobs; one learning
    rate's folds are then not the whole sweep, and their score gets a run of its own.
    """
    if not run_ids:
        return None
    runs = [client.get_run(run_id) for run_id in run_ids]
    parents = {run.data.tags.get(PARENT_ID_TAG) for run in runs}
    if len(parents) != 1 or None in parents:
        return None
    (parent,) = parents
    query = f"tags.`{PARENT_ID_TAG}` = '{parent}'"
    children = client.search_runs([runs[0].info.experiment_id], query, max_results=10000)
    trained = {c.info.run_id for c in children if MEMBERS_TAG not in c.data.tags}
    return parent if trained == set(run_ids) else None


def submission_trace(path: Path) -> dict[str, str]:
    """Path, size and SHA-256 of a submission: enough to find the file and check it is the
    one this run made, without copying hundreds of megabytes into the store."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "predict.submission": str(path.resolve()),
        "predict.submission_bytes": str(path.stat().st_size),
        "predict.submission_sha256": digest.hexdigest(),
    }
