"""Tags that say what produced a run: the project's git commit and the torch version."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

import unetcli


def provenance_tags() -> dict[str, str]:
    """{"git_commit": ..., "torch_version": ...}; no commit when the package is installed
    outside a git checkout (a wheel), or git is missing."""
    tags = {"torch_version": torch.__version__}
    checkout = Path(unetcli.__file__).resolve().parents[1]
    if (checkout / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "HEAD"],
                capture_output=True, text=True, timeout=10, check=True,
            )  # fmt: skip
            tags["git_commit"] = done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return tags
