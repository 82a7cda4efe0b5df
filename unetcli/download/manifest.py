"""The record of a finished download, so a second `unet download` knows it has nothing to do.

It also lists the entries of dataset.root that `unet download` created: only
those may ever be replaced (with download.force=true); anything else in the
folder is the user's and is left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from unetcli.datasets.base import DOWNLOAD_DIR, MOVING_MARKER

MANIFEST = "manifest.json"


def work_dir(root: Path) -> Path:
    return root / DOWNLOAD_DIR


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict) -> None:
    """Write to a temporary name and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_manifest(root: Path) -> dict | None:
    return read_json(work_dir(root) / MANIFEST)


def write_manifest(root: Path, data: dict) -> None:
    write_json(work_dir(root) / MANIFEST, data)


def moving_marker(root: Path) -> Path:
    return work_dir(root) / MOVING_MARKER
