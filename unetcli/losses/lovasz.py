"""Lovasz losses (Berman, Rannen Triki and Blaschko 2018): a convex surrogate of IoU.

The Lovasz extension of the Jaccard loss, evaluated at the vector of pixel
errors: sort the errors in decreasing order and weigh each by how much the
Jaccard loss grows when that pixel joins the set of mistakes. For 0/1 errors
it equals 1 - IoU of the hard prediction exactly. Binary models use hinge
errors max(0, 1 - logit * sign); multi-class models use |onehot - softmax|.
Follows the authors' reference implementation (MIT licence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.losses._targets import class_indices


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Increments of the Jaccard loss along errors sorted in decreasing order."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary Lovasz hinge of flat logits (P,) against 0/1 labels (P,)."""
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm]))


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax of flat probabilities (P, C), averaged over the classes present."""
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


class LovaszLoss(nn.Module):
    """Lovasz hinge (one channel) or Lovasz-softmax (C > 1 channels).

    `per_image` averages the loss of each image (the Kaggle write-ups'
    choice for the hinge); false computes one loss over the whole batch.
    """

    def __init__(self, per_image: bool = True) -> None:
        super().__init__()
        self.per_image = per_image

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = class_indices(logits, target)
        logits = logits.float()
        binary = logits.shape[1] == 1
        if binary:
            flat_logits = logits[:, 0].flatten(1)
        else:
            probs = torch.softmax(logits, dim=1)
            flat_logits = probs.permute(0, 2, 3, 1).reshape(len(probs), -1, probs.shape[1])
        flat_labels = labels.flatten(1)
        if not self.per_image:
            flat_logits = flat_logits.reshape(1, -1, *flat_logits.shape[2:])
            flat_labels = flat_labels.reshape(1, -1)
        losses = [
            lovasz_hinge_flat(x, y.float()) if binary else lovasz_softmax_flat(x, y)
            for x, y in zip(flat_logits, flat_labels)
        ]
        return torch.stack(losses).mean()
