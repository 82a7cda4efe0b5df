"""Files that go bad after the pre-training check (read by loader workers hours later).

A loader worker cannot stop the run cleanly (its exception comes back wrapped in a worker
traceback), so `MarkBadFiles` turns a failed read into a marked item and
`collate_marking_bad` lifts the marks out of the batch; in the main process `BadFiles`
applies `dataset.on_bad_file`: `stop` (at once, naming the file; the last good checkpoint is
intact) or `skip` (leave it out, count it, list it in the summary and result.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
from torch.utils.data import Dataset, default_collate

from unetcli.datasets.base import Sample
from unetcli.errors import UnetError

READ_ERRORS = (UnetError, OSError, ValueError, cv2.error)


class MarkBadFiles(Dataset):
    """`inner[key]`, or {"bad_file": path, "why": ...} when its files cannot be read."""

    def __init__(self, inner: Dataset, samples: Sequence[Sample]) -> None:
        self.inner = inner
        self.samples = samples

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, key):
        try:
            return self.inner[key]
        except READ_ERRORS as err:
            index = key[1] if isinstance(key, tuple) else key
            sample = self.samples[index]
            return {"bad_file": str(sample.image), "why": " ".join(str(err).split())}


def collate_marking_bad(items: list[dict]) -> dict:
    """The usual batch of the readable items, plus "bad_files": [(path, why), ...]."""
    good = [item for item in items if "bad_file" not in item]
    bad = [(item["bad_file"], item["why"]) for item in items if "bad_file" in item]
    batch = default_collate(good) if good else {}
    batch["bad_files"] = bad
    return batch


class BadFiles:
    """Applies dataset.on_bad_file to each batch in the main process."""

    def __init__(self, policy: str, ckpt_dir: Path) -> None:
        if policy not in ("stop", "skip"):
            raise UnetError(f"dataset.on_bad_file must be stop or skip, got {policy!r}")
        self.policy = policy
        self.ckpt_dir = ckpt_dir
        self.skipped: list[str] = []

    def filter(self, batch: dict) -> dict | None:
        """The batch without unreadable files (None if nothing is left), or a stop."""
        for path, why in batch.pop("bad_files", []):
            if self.policy == "stop":
                raise self.stop_error(path, why)
            if path not in self.skipped:
                self.skipped.append(path)
                print(f"skipped unreadable file {path} (dataset.on_bad_file=skip): {why}")
        return batch if "image" in batch else None

    def stop_error(self, path: str, why: str) -> UnetError:
        last = self.ckpt_dir / "last.pt"
        kept = (
            f"the last good checkpoint {last} is intact; after fixing, continue with "
            f"trainer.resume={last}"
            if last.is_file()
            else "no epoch had finished"
        )
        return UnetError(
            f"{path} could not be read during training although it passed the check before "
            f"training ({why}); {kept}. Replace or remove the file, or set "
            "dataset.on_bad_file=skip to leave such files out and list them."
        )
