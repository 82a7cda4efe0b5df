"""Cross-entropy weighted per pixel by the 2015 U-Net paper's weight map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from unetcli.losses._targets import class_indices, log_probabilities
from unetcli.losses.weight_map import unet_weight_map


class WeightedCrossEntropyLoss(nn.Module):
    """mean over pixels of w(x) * -log p(true class at x), w the paper's weight map.

    `unet train` computes each training mask's map once (WeightMapCache, at
    the training size), sends it through the augmentation with the mask and
    passes it as `weight`; without one (e.g. an outside caller) the map is
    computed here from the mask as given. Binary (one channel) and
    multi-class models both work. See unetcli.losses.weight_map for the exact
    definition of w_c, d1 and d2.
    """

    #: Tells the trainer to compute weight maps in the data pipeline.
    needs_weight_map = True

    def __init__(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: str | Sequence[float] | None = "balanced",
        border_on: str = "background",
        connectivity: int = 4,
    ) -> None:
        super().__init__()
        self.w0 = float(w0)
        self.sigma = float(sigma)
        self.class_weights = (
            class_weights
            if class_weights is None or isinstance(class_weights, str)
            else list(class_weights)
        )
        self.border_on = border_on
        self.connectivity = int(connectivity)

    def weight_map(self, mask: np.ndarray) -> np.ndarray:
        """The weight map of one (H, W) mask of class indices, float32."""
        return unet_weight_map(
            mask, self.w0, self.sigma, self.class_weights, self.border_on, self.connectivity
        )

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        labels = class_indices(logits, target)
        if weight is None:
            masks = labels.cpu().numpy().astype(np.uint8)
            weight = torch.from_numpy(np.stack([self.weight_map(m) for m in masks]))
        weight = weight.to(logits.device, torch.float32)
        if weight.shape != labels.shape:
            raise ValueError(
                f"weight map of shape {tuple(weight.shape)} does not match the mask "
                f"{tuple(labels.shape)}"
            )
        nll = -log_probabilities(logits).gather(1, labels.unsqueeze(1)).squeeze(1)
        return (weight * nll).mean()
