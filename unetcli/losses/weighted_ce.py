"""Cross-entropy weighted per pixel by the 2015 U-Net paper's weight map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.losses._targets import class_labels, log_probabilities, masked_mean, refuse_unless
from unetcli.losses.ce import class_weight_table
from unetcli.losses.weight_map import check_options, unet_weight_map


class WeightedCrossEntropyLoss(nn.Module):
    """mean over scored pixels of w(x) * -log p(true class at x), w the paper's weight map.

    `unet train` computes each training mask's map once (WeightMapCache, at
    the training size), sends it through the augmentation with the mask and
    passes it as `weight`; without one (e.g. an outside caller) the map is
    computed here from the mask as given. Binary and multiclass tasks work;
    multilabel ones (no single class per pixel) are refused. Ignored pixels
    count as background in the map (they separate no objects) and weigh 0 in
    the loss. See unetcli.losses.weight_map for the exact definition of w_c,
    d1 and d2.
    """

    #: Tells the trainer to compute weight maps in the data pipeline.
    needs_weight_map = True

    def __init__(
        self,
        task: Task,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: str | Sequence[float] | None = "balanced",
        border_on: str = "background",
        connectivity: int = 4,
    ) -> None:
        super().__init__()
        refuse_unless(
            task,
            "weighted_ce",
            ("binary", "multiclass"),
            "its cross-entropy and object weight map need one class per pixel",
        )
        check_options(class_weights, border_on)
        self.task = task
        self.w0 = float(w0)
        self.sigma = float(sigma)
        self.class_weights = (
            class_weights
            if class_weights is None or isinstance(class_weights, str)
            else class_weight_table(task, class_weights, "loss.class_weights")
        )
        self.border_on = border_on
        self.connectivity = int(connectivity)

    def weight_map(self, mask: np.ndarray) -> np.ndarray:
        """The weight map of one (H, W) mask of class indices, float32."""
        if self.task.ignore_index is not None:
            mask = np.where(mask == self.task.ignore_index, 0, mask)
        return unet_weight_map(
            mask, self.w0, self.sigma, self.class_weights, self.border_on, self.connectivity
        )

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        labels, scored = class_labels(self.task, logits, target)
        if weight is None:
            masks = target.cpu().numpy()
            weight = torch.from_numpy(np.stack([self.weight_map(m) for m in masks]))
        weight = weight.to(logits.device, torch.float32)
        if weight.shape != labels.shape:
            raise ValueError(
                f"internal: weight map of shape {tuple(weight.shape)} does not match the mask "
                f"{tuple(labels.shape)}"
            )
        nll = -log_probabilities(self.task, logits).gather(1, labels.unsqueeze(1)).squeeze(1)
        return masked_mean(weight * nll, scored)
