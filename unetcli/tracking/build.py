"""Trackers from the `logger` config group, and trackers reopened from a checkpoint's record.

The classes are named by `_target_` in conf/logger/*.yaml; they are built directly (not
through hydra.utils.instantiate) so that a missing extra reaches the user as its own
one-paragraph install line, not wrapped in Hydra's instantiation error.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from unetcli.errors import UnetError
from unetcli.tracking.csv_table import CSVTracker
from unetcli.tracking.interface import Tracker


def build_trackers(logger: DictConfig | None) -> list[Tracker]:
    """One tracker per chosen logger; metrics.csv always (sweep summaries read it)."""
    nodes: dict[str, Any] = OmegaConf.to_container(logger, resolve=True) if logger else {}
    trackers = [make(node, f"logger.{name}") for name, node in nodes.items() if node]
    if not any(isinstance(t, CSVTracker) for t in trackers):
        trackers.append(CSVTracker())
    return trackers


def make(node: dict[str, Any], key: str) -> Tracker:
    """The tracker `node["_target_"]` names, with the node's other keys as arguments."""
    settings = {k: v for k, v in node.items() if k != "_target_"}
    try:
        cls = get_class(str(node.get("_target_")))
    except Exception as err:
        raise UnetError(f"cannot build `{key}`: no tracker class {node.get('_target_')!r}") from err
    try:
        return cls(**settings)
    except TypeError as err:
        raise UnetError(f"cannot build `{key}` from its config: {err}") from err


def reopen(record: dict[str, dict]) -> list[tuple[Tracker, dict]]:
    """The trackers a checkpoint's `state["tracking"]` names, with what finds their run.

    Trackers whose library is missing now are left out (evaluate and predict still run).
    """
    found = []
    for name, data in (record or {}).items():
        try:
            found.append((make({"_target_": data["target"], **data["settings"]}, name), data))
        except (UnetError, KeyError):
            continue
    return found
