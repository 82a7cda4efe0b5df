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
(e.g. 255 for "not annotated").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unetcli.errors import UnetError

KINDS = ("binary", "multiclass", "multilabel")


@dataclass(frozen=True)
class Task:
    kind: str
    num_classes: int  # the model's output channels
    ignore_index: int | None = None

    def __post_init__(self) -> None:
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

    @classmethod
    def from_config(cls, dataset_cfg: Any) -> Task:
        """The task a dataset config declares; `task: auto` (or absent) follows num_classes."""
        num_classes = int(dataset_cfg.get("num_classes", 1))
        kind = str(dataset_cfg.get("task", "auto") or "auto")
        if kind == "auto":
            kind = "binary" if num_classes == 1 else "multiclass"
        ignore = dataset_cfg.get("ignore_index")
        return cls(kind, num_classes, None if ignore is None else int(ignore))

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

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-channel probabilities (N, C, H, W) in float32."""
        logits = logits.float()
        if self.kind == "multiclass":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

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
