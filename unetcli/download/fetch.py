"""`unet download` for datasets hosted on Kaggle: fetch, unpack, check, move into place, record.

Order matters for the promise that a failed download never looks complete:
files are fetched into dataset.root/.unet-download/archives/ (a cut transfer
stays there and is resumed), unpacked into a staging folder beside them,
checked by the dataset's own layout, and only then renamed into dataset.root,
under a marker that `train` refuses while it exists. Entries of dataset.root
that this command did not create are never replaced or deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unetcli import __version__
from unetcli.datasets.base import Layout
from unetcli.download.archive import unpack
from unetcli.download.client import DISK_FULL, KaggleClient, KaggleHTTPError, disk_full_error
from unetcli.download.manifest import (
    moving_marker,
    read_json,
    read_manifest,
    work_dir,
    write_json,
    write_manifest,
)
from unetcli.errors import UnetError

#: Answers to a one-file request that may only mean "this server has no per-file
#: download": the competition's whole archive is fetched instead.
NO_PER_FILE = {400, 404, 405, 501}


@dataclass(frozen=True)
class KaggleSource:
    """What to fetch: a competition (some of its files, or all) or a dataset."""

    competition: str | None
    dataset: str | None
    files: tuple[str, ...] | None
    include: tuple[str, ...] | None
    published: dict[str, int]

    @classmethod
    def from_config(cls, node: DictConfig) -> KaggleSource:
        data = OmegaConf.to_container(node, resolve=True)
        competition, dataset = data.get("competition"), data.get("dataset")
        if bool(competition) == bool(dataset):
            raise UnetError(
                "dataset.kaggle must name exactly one of `competition` (e.g. "
                "carvana-image-masking-challenge) or `dataset` (owner/name)"
            )
        if dataset and dataset.count("/") != 1:
            raise UnetError(f"dataset.kaggle.dataset must be owner/name, not {dataset}")
        files, include = data.get("files"), data.get("include")
        return cls(
            competition,
            dataset,
            tuple(files) if files else None,
            tuple(include) if include else None,
            dict(data.get("published") or {}),
        )

    def signature(self) -> dict:
        return {
            "competition": self.competition,
            "dataset": self.dataset,
            "files": list(self.files) if self.files else None,
            "include": list(self.include) if self.include else None,
        }

    def describe(self) -> str:
        if self.dataset:
            return f"Kaggle dataset {self.dataset}"
        which = ", ".join(self.files) if self.files else "all files"
        return f"Kaggle competition {self.competition} ({which})"


@dataclass
class Outcome:
    status: str
    rows: list[tuple[str, str]]


def layout_at(dataset_cfg: DictConfig, folder: Path) -> Layout:
    """The dataset's layout reading `folder` instead of dataset.root."""
    try:
        return instantiate(dataset_cfg.layout, root=str(folder))
    except InstantiationException as err:
        raise UnetError(f"cannot build `dataset.layout` from its config: {err}") from err


def download(
    dataset_cfg: DictConfig, force: bool = False, retries: int = 5, keep_archives: bool = False
) -> Outcome:
    """Make dataset.root hold the dataset's Kaggle files; see the module docstring."""
    started = time.time()
    source = KaggleSource.from_config(dataset_cfg.kaggle)
    root = Path(str(dataset_cfg.root)).expanduser()
    rows = [("folder", str(root)), ("source", source.describe())]
    manifest = read_manifest(root)
    marker = read_json(moving_marker(root))
    if not force:
        skipped = _already_there(dataset_cfg, root, source, manifest, marker)
        if skipped is not None:
            return Outcome(skipped.status, rows + skipped.rows)
    client = KaggleClient(retries)
    work = work_dir(root)
    _remove_leftovers(work)
    archives = work / "archives"
    if force:
        shutil.rmtree(archives, ignore_errors=True)  # our own earlier downloads
    with _disk_full_named(root):
        fetched, missing = _fetch(client, source, archives, force)
        counts = _unpack_and_install(dataset_cfg, fetched, source, (manifest, marker))
        sizes = {name: path.stat().st_size for path, name, _ in fetched}
        write_manifest(
            root,
            {
                "source": source.signature(),
                "entries": counts.pop("_entries"),
                "files": sizes,
                "missing": missing,
                "counts": counts,
                "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "unetcli": __version__,
            },
        )
        moving_marker(root).unlink(missing_ok=True)
    if not keep_archives:
        shutil.rmtree(archives, ignore_errors=True)
    return _downloaded(rows, sizes, missing, counts, source, started)


def _already_there(
    dataset_cfg: DictConfig,
    root: Path,
    source: KaggleSource,
    manifest: dict | None,
    marker: dict | None,
) -> Outcome | None:
    """The outcome when nothing needs fetching (recorded earlier, or a copy in place), else None."""
    if marker is None and _recorded(root, manifest, source):
        when = manifest.get("finished", "earlier")
        rows = [("unpacked", _counts(manifest.get("counts", {}), source.published))]
        return Outcome(
            f"already downloaded ({when}); nothing to do. download.force=true fetches again.", rows
        )
    if manifest is None and marker is None and root.is_dir():
        counts = _complete_in_place(layout_at(dataset_cfg, root))
        if counts:
            return Outcome(
                "dataset.root already holds a complete copy that unet download did not fetch; "
                "nothing downloaded (unet train can use it as it is).",
                [("found", _counts(counts, source.published))],
            )
    return None


def _unpack_and_install(
    dataset_cfg: DictConfig,
    fetched: list[tuple[Path, str, list[str] | None]],
    source: KaggleSource,
    earlier: tuple[dict | None, dict | None],
) -> dict:
    """Unpack into staging, check it with the layout, move it into dataset.root.

    Returns the layout's counts plus `_entries`, the names moved into place.
    """
    root = Path(str(dataset_cfg.root)).expanduser()
    staging = work_dir(root) / f"staging-{os.getpid()}"
    try:
        for path, name, only in fetched:
            print(f"unpacking {path.name}")
            unpack(path, staging, list(source.include or []) or None, only, name)
        try:
            counts = layout_at(dataset_cfg, staging).inventory()
        except UnetError as err:
            raise UnetError(
                f"the downloaded files do not hold a complete {dataset_cfg.get('name')} dataset: "
                f"{err}. Nothing was moved into {root}. Check dataset.kaggle (files, include) "
                "and run again with download.force=true."
            ) from err
        return {**counts, "_entries": _install(root, staging, *earlier)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _disk_full_named(root: Path) -> Iterator[None]:
    """A full disk while fetching, unpacking or recording becomes one paragraph naming root."""
    try:
        yield
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full_error(err, root) from err
        raise


def _downloaded(
    rows: list[tuple[str, str]],
    sizes: dict[str, int],
    missing: list[str],
    counts: dict[str, int],
    source: KaggleSource,
    started: float,
) -> Outcome:
    rows = rows + [
        ("fetched", ", ".join(f"{name} ({_size(size)})" for name, size in sizes.items())),
        ("unpacked", _counts(counts, source.published)),
        ("time", f"{time.time() - started:.1f} s"),
    ]
    if missing:
        rows.insert(3, ("not on Kaggle", ", ".join(missing)))
        return Outcome(f"downloaded, unpacked and checked, without {', '.join(missing)}", rows)
    return Outcome("downloaded, unpacked and checked", rows)


def _recorded(root: Path, manifest: dict | None, source: KaggleSource) -> bool:
    """A finished download of the same source whose entries are all still there."""
    if not manifest or manifest.get("source") != source.signature():
        return False
    return all(_exists(root / entry) for entry in manifest.get("entries", []))


def _complete_in_place(layout: Layout) -> dict[str, int] | None:
    try:
        counts = layout.inventory()
    except UnetError:
        return None
    return counts or None


def _fetch(
    client: KaggleClient, source: KaggleSource, archives: Path, force: bool
) -> tuple[list[tuple[Path, str, list[str] | None]], list[str]]:
    """Download what the source names.

    Returns ([(file, requested name, outer members to keep)], names Kaggle does
    not have). A later file that Kaggle does not have (404) is reported, not
    fatal: the layout check then decides whether what arrived is a usable
    dataset (e.g. Carvana without test.zip still trains).
    """
    if source.dataset:
        path = client.dataset_files(source.dataset, archives / "dataset", force)
        return [(path, path.name, None)], []
    competition = source.competition
    if not source.files:
        path = client.competition_files(competition, archives / "all", force)
        return [(path, path.name, None)], []
    fetched, missing = [], []
    for i, name in enumerate(source.files):
        folder = archives / name.replace(".", "_")  # one folder per requested file
        try:
            fetched.append((client.competition_file(competition, name, folder, force), name, None))
        except KaggleHTTPError as err:
            if i > 0 and err.status == 404:
                print(f"warning: {err}")
                missing.append(name)
                continue
            if i > 0 or err.status not in NO_PER_FILE:
                raise
            print(
                f"Kaggle answered {err.status} to a one-file request; fetching the whole "
                f"archive of {competition} and keeping {', '.join(source.files)}"
            )
            path = client.competition_files(competition, archives / "all", force)
            return [(path, path.name, list(source.files))], []
    return fetched, missing


def _install(root: Path, staging: Path, manifest: dict | None, marker: dict | None) -> list[str]:
    """Rename the staged entries into root; return every entry this command owns there."""
    new = sorted(p.name for p in staging.iterdir())
    ours = set((manifest or {}).get("entries", [])) | set((marker or {}).get("entries", []))
    conflicts = [name for name in new if _exists(root / name) and name not in ours]
    if conflicts:
        raise UnetError(
            f"{root} already holds {', '.join(conflicts)}, which unet download did not put "
            "there; it will not overwrite them. If that is a complete copy, `unet train` can use "
            "it as it is; otherwise move it away (or set dataset.root to another folder) and run "
            "again. What was downloaded is kept and will not be fetched again."
        )
    owned = sorted(set(new) | ours)
    write_json(moving_marker(root), {"entries": owned})
    trash = work_dir(root) / f"replaced-{os.getpid()}"
    for name in new:
        target = root / name
        if _exists(target):
            trash.mkdir(parents=True, exist_ok=True)
            os.replace(target, trash / name)  # an entry of an earlier download of ours
        os.replace(staging / name, target)
    shutil.rmtree(trash, ignore_errors=True)
    return [name for name in owned if _exists(root / name)]


def _remove_leftovers(work: Path) -> None:
    """Staging and replaced folders of interrupted runs (ours, never the user's)."""
    if not work.is_dir():
        return
    for path in work.iterdir():
        if path.is_dir() and path.name.startswith(("staging-", "replaced-")):
            shutil.rmtree(path, ignore_errors=True)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _counts(counts: dict[str, int], published: dict[str, int]) -> str:
    parts = []
    for key, value in counts.items():
        ref = published.get(key)
        note = "" if ref is None else (f" (published {ref})" if ref != value else " (as published)")
        parts.append(f"{key} {value}{note}")
    return ", ".join(parts)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
