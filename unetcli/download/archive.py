"""Unpacking downloaded archives, nested zips included, into a staging folder.

Everything is written below `staging` (inside dataset.root's download folder),
never into dataset.root itself: only a complete, checked result is moved into
place (see fetch.py), so a cut or damaged archive never looks like a dataset.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from unetcli.datasets.io import IMAGE_EXTENSIONS
from unetcli.download.client import DISK_FULL, disk_full_error
from unetcli.errors import UnetError

Select = Callable[[str], bool]


def unpack(
    download: Path,
    staging: Path,
    include: list[str] | None = None,
    only: list[str] | None = None,
    name: str | None = None,
) -> None:
    """Unpack (or copy) one downloaded file into `staging`, then any zips inside it.

    `only`: outer members to keep by name, with or without `.zip` (to pick the
    needed files out of a whole-competition archive). A file that is not a zip
    is copied under `name` (the requested file name). `include`: fnmatch
    patterns on the unpacked paths (zips inside are always opened); patterns
    that match nothing in an archive are ignored, so a differently nested copy
    of the data still unpacks.
    """
    staging.mkdir(parents=True, exist_ok=True)
    try:
        if not zipfile.is_zipfile(download):
            if download.suffix.lower() == ".zip":
                raise _incomplete(name or download.name, download, "no zip directory at its end")
            shutil.copy2(download, staging / (name or download.name))
            return
        outer_only = None
        if only:
            wanted = set(only) | {f"{kept}.zip" for kept in only}

            def outer_only(member: str) -> bool:
                return member.rstrip("/") in wanted

        _extract(download, staging, "", include, outer_only, name or download.name)
        _unpack_nested(staging, include)
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full_error(err, staging) from err
        raise


def _unpack_nested(staging: Path, include: list[str] | None) -> None:
    while True:
        nested = sorted(p for p in staging.rglob("*.[zZ][iI][pP]") if p.is_file())
        nested = [p for p in nested if zipfile.is_zipfile(p)]
        if not nested:
            return
        for inner in nested:
            prefix = inner.parent.relative_to(staging).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
            _extract(inner, inner.parent, prefix, include, None, inner.name)
            inner.unlink()  # our own copy, unpacked


def _extract(
    archive: Path,
    dest: Path,
    prefix: str,
    include: list[str] | None,
    only: Select | None,
    label: str,
) -> None:
    """Extract the members of `archive` (named `label`) into `dest` (`prefix` in staging)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():  # all checked before any is written
                _check_member(member, archive)
            members = [m for m in zf.infolist() if not m.is_dir()]
            if only is not None:
                members = [m for m in members if only(m.filename)]
            members = _included(members, prefix, include)
            if _loose_images(members):
                # A zip of bare images (no folder inside): unpack into a folder named
                # after it, as Kaggle's train.zip holds train/.
                folder = label[: -len(".zip")] if label.lower().endswith(".zip") else label
                dest = dest / folder
            total = sum(m.file_size for m in members)
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"unpacking {archive.name}",
                disable=None, leave=False,
            ) as bar:  # fmt: skip
                for member in members:
                    zf.extract(member, dest)
                    bar.update(member.file_size)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as err:
        raise _incomplete(label, archive, str(err)) from err


def _incomplete(label: str, archive: Path, why: str) -> UnetError:
    return UnetError(
        f"{label} ({archive}) is not a complete zip archive ({why}); the transfer was probably "
        "cut or the file is damaged. Nothing was moved into dataset.root. Run `unet download` "
        "again with download.force=true."
    )


def _included(members: list[zipfile.ZipInfo], prefix: str, include: list[str] | None):
    if not include:
        return members

    def keep(member: zipfile.ZipInfo) -> bool:
        path = prefix + member.filename
        return path.lower().endswith(".zip") or any(fnmatch(path, pat) for pat in include)

    kept = [m for m in members if keep(m)]
    if not any(not m.filename.lower().endswith(".zip") for m in kept):
        return members  # the patterns match nothing here: keep everything
    return kept


def _loose_images(members: list[zipfile.ZipInfo]) -> bool:
    names = [PurePosixPath(m.filename) for m in members]
    return (
        len(names) > 1
        and all(len(n.parts) == 1 for n in names)
        and all(n.suffix.lower() in IMAGE_EXTENSIONS for n in names)
    )


def _check_member(member: zipfile.ZipInfo, archive: Path) -> None:
    """Refuse a member that would land outside the staging folder or is a link.

    zipfile itself strips `..` silently; refusing says the archive is hostile or broken
    instead of unpacking it somewhere unexpected. Links are refused because a later member
    could be written through one to anywhere on the disk.
    """
    name = member.filename
    path = PurePosixPath(name.replace("\\", "/"))
    # The file type bits, where the archive was made on Unix (others record none).
    kind = stat.S_IFMT(member.external_attr >> 16) if member.create_system == 3 else 0
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        why = "a path that leaves the folder it is unpacked into"
    elif kind == stat.S_IFLNK:
        why = "a symbolic link"
    elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        why = "a special file (not a regular file)"
    else:
        return
    raise UnetError(
        f"{archive.name} ({archive}) holds a member with {why} ({name}); refusing to unpack "
        "any of it. Nothing was moved into dataset.root. Archives from Kaggle never hold "
        "such members: the file is damaged or not the one expected."
    )
