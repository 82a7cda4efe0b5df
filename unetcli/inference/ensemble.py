"""The checkpoints of an ensemble and the fold each was validated on.

`ensemble=` names a sweep folder (every `checkpoints/best.pt` below it, `last.pt` where a run
kept no best, as `dataset.fold=all` does) or a list of checkpoint files. The fold comes from
each checkpoint's own saved config, so nothing about the folds is typed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from unetcli.core.checkpoints import checkpoint_config
from unetcli.errors import UnetError


@dataclass(frozen=True)
class Member:
    """One model of an ensemble.

    `fold` is the index of the fold it was validated on (None: trained on a plain random split,
    or on every image with `dataset.fold=all`); `folds` is the K it was trained with (None: no
    folds). `config` is the run config saved in the checkpoint.
    """

    checkpoint: Path
    fold: int | None
    folds: int | None
    config: DictConfig

    @property
    def label(self) -> str:
        """How a summary names the member: its path and fold."""
        if self.fold is not None:
            return f"{self.checkpoint} (fold {self.fold} of {self.folds})"
        return f"{self.checkpoint} (all images)" if self.folds else str(self.checkpoint)


def _run_checkpoint(run: Path) -> Path | None:
    for name in ("best.pt", "last.pt"):
        path = run / "checkpoints" / name
        if path.is_file():
            return path
    return None


def _sweep_checkpoints(folder: Path) -> list[Path]:
    runs = sorted({p.parent.parent for p in folder.rglob("checkpoints/*.pt")})
    found = [c for c in (_run_checkpoint(run) for run in runs) if c is not None]
    if not found:
        raise UnetError(
            f"ensemble={folder} holds no checkpoints/best.pt or checkpoints/last.pt below it. "
            "Name the folder of a `unet train -m dataset.fold=...` sweep, or list the "
            "checkpoint files: ensemble=[a/best.pt,b/best.pt]."
        )
    return found


def _paths(source: str | Sequence[str]) -> list[Path]:
    if isinstance(source, (list, tuple, ListConfig)):
        items = [str(s) for s in source]
    else:
        items = [s for s in str(source).split(",") if s.strip()]
    if len(items) == 1 and Path(items[0]).is_dir():
        return _sweep_checkpoints(Path(items[0]))
    paths = [Path(s.strip()) for s in items]
    if not paths:
        raise UnetError("ensemble= is empty; name a sweep folder or a list of checkpoint files")
    return paths


def _fold_of(config: DictConfig) -> tuple[int | None, int | None]:
    folds = OmegaConf.select(config, "dataset.folds", default=None)
    fold = OmegaConf.select(config, "dataset.fold", default=None)
    if not folds or fold is None or str(fold) == "all":
        return None, int(folds) if folds else None
    return int(fold), int(folds)


def resolve_members(source: str | Sequence[str]) -> list[Member]:
    """The members named by `ensemble=`, folds in order (members without a fold last)."""
    members = []
    for path in _paths(source):
        config = OmegaConf.create(checkpoint_config(path))
        fold, folds = _fold_of(config)
        members.append(Member(path, fold, folds, config))
    members.sort(key=lambda m: (m.fold is None, m.fold if m.fold is not None else 0))
    _check_compatible(members)
    return members


def _check_compatible(members: list[Member]) -> None:
    """Members must predict the same thing: the same classes of the same dataset."""
    first = members[0]
    for member in members[1:]:
        for key in ("dataset.name", "dataset.num_classes", "dataset.task"):
            a = OmegaConf.select(first.config, key, default=None)
            b = OmegaConf.select(member.config, key, default=None)
            if a != b:
                raise UnetError(
                    f"the ensemble mixes models trained for different things: {key} is {a!r} "
                    f"in {first.checkpoint} but {b!r} in {member.checkpoint}. An ensemble "
                    "averages models of one dataset and one set of classes."
                )


def out_of_fold_members(members: list[Member]) -> list[Member]:
    """The members that give out-of-fold predictions: one per fold of the same K, every fold.

    Out-of-fold scores need each validation image predicted by the one model that never saw
    it; a member trained on every image (`dataset.fold=all`) has no such images.
    """
    folded = [m for m in members if m.fold is not None]
    if not folded:
        raise UnetError(
            "none of the ensemble's checkpoints was trained on a fold (dataset.folds=K "
            "dataset.fold=k), so there are no out-of-fold predictions to score. Train with "
            "`unet train -m dataset.folds=5 dataset.fold=0,1,2,3,4`."
        )
    ks = {m.folds for m in folded}
    seen = [m.fold for m in folded]
    if len(ks) != 1 or sorted(seen) != list(range(ks.pop())):
        listing = ", ".join(f"{m.checkpoint} (fold {m.fold} of {m.folds})" for m in folded)
        raise UnetError(
            f"out-of-fold evaluation needs exactly one checkpoint for each fold 0..K-1 of one "
            f"K; the ensemble has: {listing}."
        )
    return folded
