"""The inference settings shared by predict and evaluate, checked once with clear errors."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
from omegaconf import DictConfig, OmegaConf

from unetcli.core.cpus import thread_count, usable_cores
from unetcli.core.task import Task
from unetcli.datasets.torch_dataset import build_transform
from unetcli.errors import UnetError
from unetcli.inference.modes import MODES
from unetcli.inference.threshold_file import read_threshold_file
from unetcli.inference.tta import check_tta


def _pair(value, key: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError) as err:
        raise UnetError(f"{key} must be a number or [height, width], got {value!r}") from err
    return (h, w)


def resolve_threads(value: object, key: str) -> int:
    """Finishing threads: `auto` is the core count, at most 4."""
    threads = thread_count(value, key)
    return min(4, usable_cores()) if threads is None else threads


@dataclass(frozen=True)
class InferenceOptions:
    """How to cover images (mode, window), TTA, and how to turn probabilities into labels.

    `task` is the checkpoint's (from its saved dataset config): it turns
    logits into probabilities and those into labels.
    """

    task: Task
    mode: str
    tta: tuple[str, ...]
    window: tuple[int, int] | None
    overlap: float
    batch_size: int
    threshold: float
    min_object_size: int
    fill_holes: bool
    threads: int
    # False: the TTA views alone, without the plain image (the recipe search predicts each
    # view once on its own and averages the saved views itself).
    tta_identity: bool = True
    # `threshold_from`: the threshold file it came from, and the checkpoint it was swept for.
    threshold_from: str | None = None
    swept_for: str | None = None

    def describe(self) -> str:
        parts = [f"mode {self.mode}"]
        if self.mode == "sliding" and self.window:
            parts.append(f"window {self.window[0]}x{self.window[1]}, overlap {self.overlap:g}")
        parts.append(f"TTA {'+'.join(self.tta)}" if self.tta else "no TTA")
        if self.min_object_size:
            parts.append(f"objects >= {self.min_object_size} px")
        if self.fill_holes:
            parts.append("holes filled")
        return ", ".join(parts)

    def threshold_text(self) -> str:
        """`0.45`, or `0.45 (from <threshold.json>)`."""
        origin = f" (from {self.threshold_from})" if self.threshold_from else ""
        return f"{self.threshold:g}{origin}"


def inference_options(node: DictConfig, key: str, trained: DictConfig) -> InferenceOptions:
    """Read the inference keys of `<key>` (conf/inference.yaml) for a checkpoint's config.

    mode=auto is `resize` when the model was trained at a fixed `dataset.image_size`
    and `full` otherwise. The sliding window defaults to the training crop or size.
    `threshold_from` (an evaluate run's threshold.json) replaces `threshold`.
    """
    dataset = trained.dataset
    image_size = _pair(dataset.get("image_size"), "dataset.image_size")
    mode = str(node.mode)
    if mode == "auto":
        mode = "resize" if image_size else "full"
    if mode not in MODES:
        raise UnetError(f"{key}.mode must be auto, {', '.join(MODES)}; got {mode!r}")
    if mode == "resize" and not image_size:
        raise UnetError(
            f"{key}.mode=resize needs the training size dataset.image_size, but this checkpoint "
            f"was trained without one; use {key}.mode=full or {key}.mode=sliding"
        )
    window = _pair(node.window, f"{key}.window")
    if mode == "sliding" and window is None:
        window = _pair(dataset.get("crop_size"), "dataset.crop_size") or image_size
        if window is None:
            raise UnetError(f"{key}.mode=sliding needs {key}.window=[height,width]")
    overlap = float(node.overlap)
    if not 0 <= overlap < 1:
        raise UnetError(f"{key}.overlap must be in [0, 1), got {overlap}")
    batch_size = node.batch_size
    if batch_size is None:  # whole images: as many as the dataset validates at once, if it says
        whole = None if mode == "sliding" else dataset.get("validation_batch_size")
        batch_size = whole or 8
    batch_size = int(batch_size)
    if batch_size < 1:
        raise UnetError(f"{key}.batch_size must be at least 1, got {batch_size}")
    min_size = int(node.min_object_size or 0)
    if min_size < 0:
        raise UnetError(f"{key}.min_object_size must be >= 0 pixels, got {min_size}")
    threads = resolve_threads(node.threads, f"{key}.threads")
    threshold, found = _threshold(node, key)
    return InferenceOptions(
        task=Task.from_config(dataset),
        mode=mode,
        tta=tuple(check_tta(node.tta or [], f"{key}.tta")),
        window=window,
        overlap=overlap,
        batch_size=batch_size,
        threshold=threshold,
        min_object_size=min_size,
        fill_holes=bool(node.fill_holes),
        threads=threads,
        threshold_from=found.get("path"),
        swept_for=found.get("checkpoint"),
    )


def _threshold(node: DictConfig, key: str) -> tuple[float, dict]:
    """`threshold`, or the one of `threshold_from`'s file (with what the file says)."""
    source = node.get("threshold_from")
    found = read_threshold_file(source, f"{key}.threshold_from") if source else {}
    threshold = float(found.get("threshold", node.threshold))
    if not 0 <= threshold <= 1:
        raise UnetError(f"{key}.threshold must be in [0, 1], got {threshold}")
    return threshold, found


def inference_transform(trained: DictConfig, mode: str) -> A.Compose:
    """The checkpoint's evaluation transform; without its resize unless mode is `resize`."""
    dataset = trained.dataset
    if mode != "resize":
        dataset = OmegaConf.merge(dataset, {"image_size": None})
    return build_transform(dataset, trained.get("augmentation"), "val")
