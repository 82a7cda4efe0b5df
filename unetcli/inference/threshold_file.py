"""threshold.json: the best threshold of an evaluate run, which predict and export can take.

`unet evaluate` writes it into its run folder after the threshold sweep; the
`threshold_from` key of predict, evaluate and export names that folder or the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from unetcli.core.files import atomic_write_text
from unetcli.errors import UnetError

THRESHOLD_FILE = "threshold.json"


def write_threshold_file(folder: Path, content: dict) -> Path:
    """threshold.json in `folder`, written to a temporary name and renamed."""
    path = Path(folder) / THRESHOLD_FILE
    atomic_write_text(path, json.dumps(content, indent=2) + "\n", what="threshold file")
    return path


def read_threshold_file(source: str | Path, key: str = "threshold_from") -> dict:
    """The content of an evaluate run's threshold.json (`source`: the file or its run folder;
    `key` names the config key in errors)."""
    path = Path(source)
    if path.is_dir():
        path = path / THRESHOLD_FILE
    if not path.is_file():
        raise UnetError(
            f"{key}={source}: no {THRESHOLD_FILE} there. Point it at the run "
            "folder of `unet evaluate` (binary and multilabel models write one after the "
            "threshold sweep) or at the file itself."
        )
    try:
        content = json.loads(path.read_text())
        threshold = float(content["threshold"])
    except (ValueError, KeyError, TypeError) as err:
        raise UnetError(f"{path} is not a threshold file written by unet evaluate: {err}") from err
    if not 0 <= threshold <= 1:
        raise UnetError(f"{path} holds threshold {threshold}, outside [0, 1]")
    return {**content, "threshold": threshold, "path": str(path)}
