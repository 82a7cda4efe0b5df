"""The preprocessed data cache (`dataset.cache`): every file decoded, converted and resized once.

Decoding a 1918x1280 JPEG and its GIF mask, or a 20-megapixel PNG, costs far more than the
random augmentation that follows, and without a cache it is paid again every epoch. The
deterministic part of the pipeline (read, convert, decode the mask, resize to
dataset.image_size) is done once per file and stored as .npy arrays of the reader's own dtype
and channel count; the random part then runs on those arrays each epoch.

On disk, under `<cache_dir>/<dataset name>-<hash of the preprocessing config>/`, each sample is
one *entry*: `<name>.image.npy`, `<name>.mask.npy` (when it has a mask) and `<name>.json`,
written in that order, each to a temporary name and renamed; the .json is the mark of a
complete entry, so an entry whose writer was killed half-way is never read. An entry's name
hashes the image path and the identities (path, size, modification time) of all its files: a
changed file makes a new entry for that sample alone, and the stale one is removed. Builders
hold an exclusive lock on the folder, so processes that start together (loader workers,
ranks, sweep jobs) decode each file once; the ones that waited find every entry present.

`memory` reads the built entries into RAM (the forked loader workers share those pages);
`disk` memory-maps them (the page cache keeps what fits); `auto` takes memory when the whole
cache is small (MEMORY_LIMIT, and RAM_SHARE of the available memory), else disk; `off` reads
the files every time, as before the cache existed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unetcli.core.console import progress_bar
from unetcli.core.cpus import usable_cores
from unetcli.datasets.base import Layout, Sample
from unetcli.errors import UnetError

#: Bump when what an entry holds changes; old folders are then simply not found.
CACHE_VERSION = 1
MODES = ("auto", "memory", "disk", "off")
#: `auto` holds the cache in memory when it takes at most MEMORY_LIMIT bytes and this share
#: of the available RAM; a larger one is memory-mapped, which reads nearly as fast (Carvana at
#: 320x480: 487 against 638 samples/s per core) and keeps the run's resident memory small.
RAM_SHARE = 0.25
MEMORY_LIMIT = 256 * 2**20
#: Where the cache goes when dataset.cache_dir is not set (inside dataset.root).
DEFAULT_FOLDER = ".unet-cache"

Entry = tuple[np.ndarray, "np.ndarray | None", tuple[int, int]]


@dataclass
class BuildReport:
    """What a build found and did; the run's start line is made from it."""

    hits: int = 0
    built: int = 0
    failed: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def line(self, folder: Path, in_memory: bool) -> str:
        where = "in memory" if in_memory else "memory-mapped"
        failed = f", {len(self.failed)} unreadable (read directly)" if self.failed else ""
        built = f" (built in {self.seconds:.1f} s)" if self.built else ""
        return (
            f"data cache: {self.hits} hit, {self.built} miss{built}"
            f"{failed}, {self.bytes / 1e9:.2f} GB {where}, {folder}"
        )


class PreprocessedStore:
    """Reads the entries of samples; `read(sample)` is None where a sample has none (it is then
    read from its files, through the whole pipeline, as without the cache)."""

    def __init__(self, folder: Path, names: dict[Sample, str], in_memory: bool) -> None:
        self.folder = folder
        self.names = names
        self.in_memory = in_memory
        self._held: dict[str, Entry] = {}
        if in_memory:
            for name in sorted(set(names.values())):
                entry = self._load(name, mmap=False)
                if entry is not None:
                    for array in entry[:2]:
                        if array is not None:
                            array.flags.writeable = False
                    self._held[name] = entry

    def read(self, sample: Sample) -> Entry | None:
        """(image, mask or None, original (height, width)) of the sample, or None.

        The arrays are read-only (memory-mapped, or held and marked so): an augmentation
        that wrote into its input would raise instead of changing the cache, and none is
        copied (a 1500x1500 tile that is cropped to 256x256 is never copied whole).
        """
        name = self.names.get(sample)
        if name is None:
            return None
        return self._held.get(name) if self.in_memory else self._load(name, mmap=True)

    def _load(self, name: str, mmap: bool) -> Entry | None:
        mode = "r" if mmap else None
        try:
            meta = json.loads((self.folder / f"{name}.json").read_text())
            image = np.load(self.folder / f"{name}.image.npy", mmap_mode=mode)
            mask = None
            if meta["mask"]:
                mask = np.load(self.folder / f"{name}.mask.npy", mmap_mode=mode)
        except (OSError, ValueError, KeyError):  # removed by a newer build, or damaged
            return None
        return image, mask, (int(meta["shape"][0]), int(meta["shape"][1]))


def cache_mode(dataset_cfg: Any) -> str:
    """dataset.cache, checked (a config without the key is `off`, today's behaviour)."""
    mode = str(dataset_cfg.get("cache", "off") or "off")
    if mode not in MODES:
        raise UnetError(f"dataset.cache must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def cache_folder(dataset_cfg: Any, layout: Layout) -> Path:
    """The folder of this dataset's entries for this preprocessing config."""
    base = dataset_cfg.get("cache_dir") or (layout.root / DEFAULT_FOLDER)
    name = str(dataset_cfg.get("name") or type(layout).__name__)
    return Path(base) / f"{name}-{config_key(dataset_cfg, layout)}"


def config_key(dataset_cfg: Any, layout: Layout) -> str:
    """A hash of everything that decides an entry's arrays besides the files themselves:
    the training size, the channels, the layout with its reader options, the mask decoding."""
    from omegaconf import OmegaConf

    def plain(value: Any) -> Any:
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    keys = ("name", "image_size", "in_channels", "num_classes", "task", "ignore_index", "layout")
    described = {key: plain(dataset_cfg.get(key)) for key in keys}
    described["reader"] = type(layout).__module__ + "." + type(layout).__qualname__
    described["version"] = CACHE_VERSION
    return _digest(json.dumps(described, sort_keys=True, default=str))[:12]


def entry_name(layout: Layout, sample: Sample) -> str:
    """`<hash of the image path>-<hash of every file's path, size and modification time>`."""
    identities = []
    # Every file the sample is read from: one per channel in a channel-folder layout.
    for path in [*layout.image_files(sample.image), *layout.mask_files(sample)]:
        stat = path.stat()
        identities.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return f"{_digest(str(sample.image.resolve()))[:16]}-{_digest(json.dumps(identities))[:16]}"


def open_store(
    dataset_cfg: Any,
    layout: Layout,
    samples: Sequence[Sample],
    resize: Any,
    desc: str | None = "caching images",
    checked: bool = False,
) -> tuple[PreprocessedStore | None, str | None]:
    """The store of `samples` (built where entries are missing) and the start line, or
    (None, None) with dataset.cache=off. `resize` does the deterministic resize (an
    albumentations Compose, or None for datasets trained at their files' size);
    `checked`: the samples passed the full pre-training check, and their new entries say
    so (see `checked_samples`)."""
    mode = cache_mode(dataset_cfg)
    if mode == "off":
        return None, None
    folder = cache_folder(dataset_cfg, layout)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if mode == "auto":
            return None, f"data cache: off ({folder} cannot be created: {err.strerror})"
        raise UnetError(
            f"dataset.cache={mode} needs a writable folder, but {folder} cannot be created "
            f"({err.strerror}). Set dataset.cache_dir=PATH, or dataset.cache=off."
        ) from err
    names = _entry_names(layout, samples)
    report = build_entries(folder, layout, names, (resize, checked), desc)
    small = report.bytes <= min(MEMORY_LIMIT, RAM_SHARE * _ram())
    in_memory = mode == "memory" or (mode == "auto" and small)
    store = PreprocessedStore(folder, names, in_memory)
    return store, report.line(folder, in_memory)


def open_for_inference(
    dataset_cfg: Any, layout: Layout, samples: Sequence[Sample], resize: Any
) -> tuple[PreprocessedStore | None, str | None]:
    """The memory-mapped store of `samples` for evaluate and predict, and its line; (None,
    None) where nothing is to be read from it.

    Images are read once per run there, so `auto` reads the entries that exist (e.g. the
    validation images a training run cached) and writes none: a test set of 100,064
    Carvana images would take 46 GB at 320x480. `memory` and `disk` build the missing
    entries first, for a test set that is predicted again and again (TTA, thresholds,
    members); `off` reads the files.
    """
    mode = cache_mode(dataset_cfg)
    folder = cache_folder(dataset_cfg, layout)
    if mode == "off" or (mode == "auto" and not folder.is_dir()):
        return None, None
    if mode != "auto":
        return open_store(dataset_cfg, layout, samples, resize)
    names = _entry_names(layout, samples)
    names = {s: n for s, n in names.items() if (folder / f"{n}.json").is_file()}
    if not names:
        return None, None
    rest = "" if len(names) == len(samples) else "; the others from their files"
    line = f"data cache: {len(names)} of {len(samples)} images from {folder}{rest}"
    return PreprocessedStore(folder, names, in_memory=False), line


def _entry_names(layout: Layout, samples: Sequence[Sample]) -> dict[Sample, str]:
    names = {}
    for sample in dict.fromkeys(samples):
        with contextlib.suppress(OSError):  # a missing file: read (and reported) as uncached
            names[sample] = entry_name(layout, sample)
    return names


def checked_samples(dataset_cfg: Any, layout: Layout, samples: Sequence[Sample]) -> set[Sample]:
    """The samples whose files passed the full pre-training check when their complete entry
    was built, and have not changed since (the entry's name holds their size and time): the
    next run need not read them again to check them."""
    if cache_mode(dataset_cfg) == "off":
        return set()
    folder = cache_folder(dataset_cfg, layout)
    trusted = set()
    for sample in samples:
        try:
            meta = json.loads((folder / f"{entry_name(layout, sample)}.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("checked"):
            trusted.add(sample)
    return trusted


def build_entries(
    folder: Path, layout: Layout, names: dict[Sample, str], how: tuple, desc: str | None
) -> BuildReport:
    """Write the entries that are missing, under the folder's lock; count hits and misses.
    `how` is (the resize, whether the samples passed the full check)."""
    start = time.perf_counter()
    report = BuildReport()
    with _locked(folder):
        for stale in folder.glob(".tmp-*"):  # left by a killed builder (we hold the lock)
            stale.unlink(missing_ok=True)
        missing = [(s, n) for s, n in names.items() if not (folder / f"{n}.json").is_file()]
        report.hits = len(names) - len(missing)
        if missing:
            bar = progress_bar(total=len(missing), desc=desc)
            with ThreadPoolExecutor(max(1, min(usable_cores(), 8))) as pool:
                for problem in pool.map(
                    lambda item: _build_one(folder, layout, item, how), missing
                ):
                    if problem:
                        report.failed.append(problem)
                    bar.update(1)
            bar.close()
            report.built = len(missing) - len(report.failed)
    report.bytes = sum(_entry_bytes(folder, n) for n in set(names.values()))
    report.seconds = time.perf_counter() - start
    return report


def _build_one(folder: Path, layout: Layout, item: tuple[Sample, str], how: tuple) -> str | None:
    """Read, decode and resize one sample and write its entry; a read error is returned
    (the sample is then read from its files when used, where dataset.on_bad_file applies)."""
    sample, name = item
    resize, checked = how
    try:
        image = layout.read_image(sample.image)
        mask = None if sample.mask is None else layout.read_mask(sample.mask)
    except Exception as err:  # noqa: BLE001 - any unreadable file is left to the uncached path
        return f"{sample.image}: {err}"
    shape = image.shape[:2]
    if resize is not None:
        image, mask = resize(image, mask)
    write_entry(folder, name, (image, mask), shape, checked)
    for old in folder.glob(f"{name.split('-')[0]}-*.json"):  # the sample's stale entries
        if old.name != f"{name}.json":
            remove_entry(folder, old.name[: -len(".json")])
    return None


def write_entry(
    folder: Path, name: str, arrays: tuple, shape: tuple[int, int], checked: bool = False
) -> None:
    """Write an entry's arrays (image, mask or None), then its .json (the mark of a complete
    entry), each renamed into place from a temporary name."""
    image, mask = arrays
    _save(folder, f"{name}.image.npy", lambda f: np.save(f, np.ascontiguousarray(image)))
    if mask is not None:
        _save(folder, f"{name}.mask.npy", lambda f: np.save(f, np.ascontiguousarray(mask)))
    meta = {"shape": [int(shape[0]), int(shape[1])], "mask": mask is not None, "checked": checked}
    _save(folder, f"{name}.json", lambda f: f.write(json.dumps(meta).encode()))


def remove_entry(folder: Path, name: str) -> None:
    """Remove an entry, its mark first (so it is never seen complete with a file missing)."""
    for suffix in (".json", ".image.npy", ".mask.npy"):
        (folder / f"{name}{suffix}").unlink(missing_ok=True)


def _save(folder: Path, filename: str, write: Any) -> None:
    tmp = folder / f".tmp-{os.getpid()}-{filename}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, folder / filename)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UnetError(
            f"cannot write the data cache in {folder} ({err.strerror}). Free some space, "
            "set dataset.cache_dir=PATH elsewhere, or dataset.cache=off."
        ) from err


def _entry_bytes(folder: Path, name: str) -> int:
    total = 0
    for suffix in (".image.npy", ".mask.npy"):
        with contextlib.suppress(OSError):
            total += (folder / f"{name}{suffix}").stat().st_size
    return total


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock: one builder at a time, the others wait for it."""
    import fcntl

    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _ram() -> int:
    """Available memory in bytes (MemAvailable), or the physical memory where unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()
