"""The task, named once: binary, multi-class or multi-label segmentation.

Everything that turns logits into probabilities or labels, or that counts
labels, asks the `Task` instead of guessing from the number of channels:
losses, metrics, evaluate, predict and the pictures.

- binary: one logit, sigmoid; masks hold 0/1; labels are a (H, W) 0/1 map.
- multiclass: C logits, softmax; masks hold class indices 0..C-1; labels
  are a (H, W) argmax map.
- multilabel: C logits, one sigmoid each (classes may overlap); masks are
  (C, H, W) 0/1 planes; labels are (C, H, W) planes.

`ignore_index` is a mask value that neither losses nor metrics count
(e.g. 255 for "not annotated"); in a multilabel mask it is per plane.

Class numbering for people (pictures, file names, submissions): foreground
class k is label k of a binary or multiclass map, and plane k - 1 of a
multilabel one, so "class 1" is the same colour and the same suffix
whatever the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unetcli.errors import UnetError

if TYPE_CHECKING:  # the torch-free runner (unetcli.runner) imports this module
    import torch

KINDS = ("binary", "multiclass", "multilabel")


class Task:
    """The kind of task, the model's output channels, and the mask value to ignore.

    Immutable and compared by value. Not a dataclass on purpose: losses are
    built with `hydra.utils.instantiate(cfg.loss, task=task)`, and Hydra turns
    dataclass keyword arguments into configs instead of passing them through.
    """

    __slots__ = ("kind", "num_classes", "ignore_index")
    kind: str
    num_classes: int
    ignore_index: int | None

    def __init__(self, kind: str, num_classes: int, ignore_index: int | None = None) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "num_classes", int(num_classes))
        ignore = None if ignore_index is None else int(ignore_index)
        object.__setattr__(self, "ignore_index", ignore)
        self._check()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Task is immutable; build a new one instead of setting {name}")

    def __reduce__(self) -> tuple:
        return (Task, (self.kind, self.num_classes, self.ignore_index))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.__reduce__() == other.__reduce__()

    def __hash__(self) -> int:
        return hash(self.__reduce__()[1])

    def __repr__(self) -> str:
        return f"Task({self.kind!r}, {self.num_classes}, ignore_index={self.ignore_index})"

    def _check(self) -> None:
        if self.kind not in KINDS:
            raise UnetError(f"dataset.task must be auto, {', '.join(KINDS)}; got {self.kind!r}")
        if self.kind == "binary" and self.num_classes != 1:
            raise UnetError(
                f"dataset.task=binary needs dataset.num_classes=1 (one logit), got "
                f"{self.num_classes}; for {self.num_classes} exclusive classes use "
                "dataset.task=multiclass"
            )
        if self.kind == "multiclass" and self.num_classes < 2:
            raise UnetError(
                "dataset.task=multiclass needs dataset.num_classes >= 2 (background included); "
                "a single foreground class is dataset.task=binary with num_classes=1"
            )
        if self.num_classes < 1:
            raise UnetError(f"dataset.num_classes must be at least 1, got {self.num_classes}")
        if self.ignore_index is not None and not 0 <= self.ignore_index <= 65535:
            raise UnetError(
                f"dataset.ignore_index={self.ignore_index} is no mask pixel value; masks hold "
                "0..65535 (8 or 16 bit), e.g. 255 for pixels nobody labelled"
            )
        if self.ignore_index is not None and self.ignore_index < self.label_count:
            raise UnetError(
                f"dataset.ignore_index={self.ignore_index} is also a class of this "
                f"{self.kind} task (labels 0..{self.label_count - 1}); choose a value outside "
                "them, e.g. 255, or null"
            )

    @classmethod
    def from_config(cls, dataset_cfg: Any) -> Task:
        """The task a dataset config declares; `task: auto` follows num_classes.

        Checkpoints saved before `dataset.task` and `dataset.ignore_index` existed
        lack both keys: they read as auto and no ignored value.
        """
        num_classes = int(dataset_cfg["num_classes"])
        kind = str(dataset_cfg.get("task") or "auto")
        if kind == "auto":
            kind = "binary" if num_classes == 1 else "multiclass"
        return cls(kind, num_classes, dataset_cfg.get("ignore_index"))

    @property
    def multilabel(self) -> bool:
        return self.kind == "multilabel"

    @property
    def label_count(self) -> int:
        """Distinct labels per pixel and plane: 2 (binary, and each multilabel plane), or C."""
        return self.num_classes if self.kind == "multiclass" else 2

    @property
    def foreground(self) -> list[int]:
        """The classes whose scores are averaged: 1 (binary), 1..C-1, or every plane 0..C-1."""
        if self.kind == "binary":
            return [1]
        if self.kind == "multiclass":
            return list(range(1, self.num_classes))
        return list(range(self.num_classes))

    def class_number(self, index: int) -> int:
        """The number people see for a foreground class index (see the module docstring)."""
        return index + 1 if self.multilabel else index

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-channel probabilities (N, C, H, W) in float32."""
        logits = logits.float()
        if self.kind == "multiclass":
            return logits.softmax(dim=1)
        return logits.sigmoid()

    def labels(self, probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        """Labels from probabilities (N, C, H, W): (N, H, W) maps, or (N, C, H, W) planes."""
        if self.kind == "multiclass":
            return probs.argmax(dim=1)
        if self.kind == "binary":
            return (probs[:, 0] > threshold).long()
        return (probs > threshold).long()

    def labels_np(self, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """The same for one image's probabilities (C, H, W) in NumPy, as uint8."""
        if self.kind == "multiclass":
            return probs.argmax(0).astype(np.uint8)
        if self.kind == "binary":
            return (probs[0] > threshold).astype(np.uint8)
        return (probs > threshold).astype(np.uint8)

    def valid(self, target: torch.Tensor) -> torch.Tensor:
        """True where a mask (maps or planes) is scored, i.e. not `ignore_index`."""
        if self.ignore_index is None:
            return target.new_ones(target.shape).bool()
        return target != self.ignore_index

    def valid_np(self, target: np.ndarray) -> np.ndarray:
        """The same for a NumPy mask."""
        if self.ignore_index is None:
            return np.ones(target.shape, dtype=bool)
        return target != self.ignore_index
