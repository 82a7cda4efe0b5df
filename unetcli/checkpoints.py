"""Checkpoints that survive interruption, in one format that training and inference share.

Written to a temporary name, then renamed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from unetcli.errors import UnetError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically.

    The data goes to `<path>.tmp`, is flushed to disk, and is renamed over
    `path`, so a run killed at any moment leaves the previous good file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `unet train` onto the CPU, with a clear error if unusable."""
    path = Path(path)
    if not path.is_file():
        raise UnetError(
            f"checkpoint file {path} does not exist. Pass checkpoint=PATH (or "
            "trainer.resume=PATH) pointing at a .pt file from a run folder, e.g. "
            "outputs/train/<run>/checkpoints/best.pt."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a corrupt file
        raise UnetError(
            f"cannot load checkpoint {path}: {err}. Is it a complete .pt file?"
        ) from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UnetError(
            f"{path} is not a unetcli checkpoint (it lacks the model weights or the config it "
            "was trained with)."
        )
    return state
