"""Files written so that a full disk, a read-only folder or a kill never costs the last good copy.

Everything goes to a temporary name beside the final one, is flushed to disk, and is renamed
over the final name only when complete. On failure the temporary file is removed and the
error names the path and the free space left there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

from unetcli.errors import UnetError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def free_space(folder: Path) -> str:
    """Free space on the disk holding `folder`, in words (or why it is unknown)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return f"{shutil.disk_usage(probe).free / 2**20:.1f} MiB free"
    except OSError as err:
        return f"free space unknown ({err.strerror})"


def write_failed(path: Path, what: str, err: OSError) -> UnetError:
    """The one paragraph for a write that failed: which file, why, how much room is left."""
    if err.errno in NO_SPACE:
        why = "the disk is full or the file is larger than allowed"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "the folder is read-only or not yours"
    else:
        why = err.strerror or str(err)
    return UnetError(
        f"could not write {what} {path}: {why} ({free_space(path.parent)} in {path.parent}). "
        "The previous good file, if any, is unchanged and nothing half-written was left under "
        "that name. Free some space or choose another output folder (e.g. paths.run_dir=...)."
    )


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], what: str = "file") -> None:
    """Call `write(f)` on a temporary file and rename it over `path` once complete."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        remove_quietly(tmp)
        raise write_failed(path, what, err) from err
    except BaseException:
        remove_quietly(tmp)
        raise


def remove_quietly(path: Path) -> None:
    """Remove our own temporary file if we can (on a read-only disk there is none to remove)."""
    with contextlib.suppress(OSError):
        path.unlink()


def atomic_write_bytes(path: Path, data: bytes, what: str = "file") -> None:
    """Write `data` to `path` through `atomic_write`."""
    atomic_write(path, lambda f: f.write(data), what)


def atomic_write_text(path: Path, text: str, what: str = "file") -> None:
    """Write `text` (UTF-8) to `path` through `atomic_write`."""
    atomic_write_bytes(path, text.encode("utf-8"), what)
