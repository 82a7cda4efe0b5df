"""Checkpoints that survive interruption and cannot run code, in one format that training and
inference share.

Written to a temporary name, then renamed. What is saved is plain data (tensors, numbers,
strings, lists, dicts), so every load uses `torch.load(weights_only=True)`: a file that would
need arbitrary unpickling (a stranger's checkpoint that runs code when opened) is refused.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import IO, Any

import torch

from unetcli.core.files import atomic_write, remove_quietly
from unetcli.errors import UnetError

PLAIN_LEAVES = (torch.Tensor, int, float, bool, str, bytes, type(None), torch.dtype, torch.Size)
#: `_target_`s that moved since a checkpoint could have been written: a checkpoint names the
#: classes its config builds, and an older one must still predict.
MOVED_TARGETS = {
    "unetcli.transforms.RandomRotate90KeepShape":
        "unetcli.augmentation.transforms.RandomRotate90KeepShape",
}  # fmt: skip


def with_moved_targets(node: Any) -> Any:
    """`node` (a plain config) with every moved `_target_` under its current name."""
    if isinstance(node, dict):
        return {
            k: MOVED_TARGETS.get(v, v) if k == "_target_" else with_moved_targets(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [with_moved_targets(v) for v in node]
    return node


def check_plain(value: Any, where: str = "state") -> None:
    """Refuse anything a weights-only load could not read back (a class, a function, a DictConfig).

    Checked before writing, so a checkpoint that `load_checkpoint` would refuse is never made.
    """
    if isinstance(value, PLAIN_LEAVES):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise TypeError(f"checkpoint key {key!r} under {where} is not plain data")
            check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint value {where} is a {type(value).__name__}, not plain data "
        "(tensors, numbers, strings, lists, dicts); convert it before saving"
    )


def save_checkpoint(state: dict[str, Any], path: str | Path, *also: str | Path) -> None:
    """Write `state` to `path` atomically (the previous good file stays if the write fails),
    and the same file under the names in `also` (best.pt beside last.pt).

    Serialised once, straight into the temporary file: no copy of the whole checkpoint is
    held in memory (with Adam that is three times the model), and each further name is a
    hard link to the same bytes (a copy where links are not possible). A later rename over
    one name gives it a new file and leaves the other as it was.
    """
    check_plain(state)
    path = Path(path)
    atomic_write(path, lambda f: _save_into(state, f), what="checkpoint")
    for other in map(Path, also):
        _link_or_copy(path, other)


class _KeptErrors(io.RawIOBase):
    """A file wrapper that keeps the OSError of a failed write: torch's zip writer turns it
    into a RuntimeError that no longer says the disk is full."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.error = f, None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = err
            raise


def _save_into(state: dict[str, Any], f: IO[bytes]) -> None:
    kept = _KeptErrors(f)
    try:
        torch.save(state, kept)
    except RuntimeError:
        if kept.error is not None:
            raise kept.error from None
        raise


def _link_or_copy(source: Path, dest: Path) -> None:
    """`dest` atomically replaced by a hard link to `source`, or by a copy where the file
    system has no links."""
    tmp = dest.with_name(dest.name + ".tmp")
    remove_quietly(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        with open(source, "rb") as src:
            atomic_write(dest, lambda f: shutil.copyfileobj(src, f, 2**24), what="checkpoint")
        return
    os.replace(tmp, dest)


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint written by `unet train` onto the CPU, with a clear error if unusable.

    `mmap`: map the file instead of reading it (tensors are read when touched)."""
    path = Path(path)
    if not path.is_file():
        raise UnetError(
            f"checkpoint file {path} does not exist. Pass checkpoint=PATH (or "
            "trainer.resume=PATH) pointing at a .pt file from a run folder, e.g. "
            "outputs/train/<run>/checkpoints/best.pt."
        )
    state = load_weights_only(path, "checkpoint", mmap)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UnetError(
            f"{path} is not a unetcli checkpoint (it lacks the model weights or the config it "
            "was trained with)."
        )
    return {**state, "config": with_moved_targets(state["config"])}


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The run config a checkpoint was trained with, without reading its weights.

    The file is memory-mapped, so only the pages of the config are read: an ensemble's
    members and the hardware tuner need the config of checkpoints whose weights are loaded
    later (or never) by the command itself.
    """
    return load_checkpoint(path, mmap=True)["config"]


def load_weights_only(path: Path, what: str, mmap: bool = False) -> Any:
    """`torch.load(path, weights_only=True)`, turning a refused or broken file into a UnetError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found is None:  # torch says the same for garbage that is not a pickle at all
            raise unreadable(path, what, "not a torch file, or damaged") from err
        raise UnetError(
            f"refusing to load {what} {path}: it holds a Python object ({found.group(1)}) "
            "besides tensors and plain data, and unpickling it could run code stored in the "
            "file. unetcli loads only weights-only files. If you trust its origin, load it "
            "once yourself and re-save its tensors as a plain dict."
        ) from err
    except Exception as err:  # torch raises several types for a corrupt file
        raise unreadable(path, what, str(err).strip().splitlines()[0]) from err


def unreadable(path: Path, what: str, why: str) -> UnetError:
    return UnetError(f"cannot load {what} {path}: {why}. Is it a complete .pt file?")
