"""Lovasz losses (Berman, Rannen Triki and Blaschko 2018): a convex surrogate of IoU.

The Lovasz extension of the Jaccard loss, evaluated at the vector of pixel
errors: sort the errors in decreasing order and weigh each by how much the
Jaccard loss grows when that pixel joins the set of mistakes. For 0/1 errors
it equals 1 - IoU of the hard prediction exactly. Binary tasks, and each
plane of a multilabel task, use hinge errors max(0, 1 - logit * sign);
multiclass tasks use |onehot - softmax|. Ignored pixels are left out of the
vectors, as in the authors' reference implementation (MIT licence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetcli.core.task import Task
from unetcli.losses._targets import check_target


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
    labels = labels.float()
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
    """Lovasz hinge (binary; each plane of a multilabel task) or Lovasz-softmax (multiclass).

    `per_image` averages the loss of each image (the Kaggle write-ups'
    choice for the hinge); false computes one loss over the whole batch.
    Multilabel tasks average the planes' losses.
    """

    def __init__(self, task: Task, per_image: bool = True) -> None:
        super().__init__()
        self.task = task
        self.per_image = per_image

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_target(self.task, logits, target)
        logits = logits.float()
        n = len(logits)
        if self.task.kind == "multiclass":
            probs = torch.softmax(logits, dim=1)
            scores = [probs.permute(0, 2, 3, 1).reshape(n, -1, probs.shape[1])]
            labels = [target.reshape(n, -1)]
            flat = lovasz_softmax_flat
        else:
            planes = target if self.task.multilabel else target.unsqueeze(1)
            scores = [logits[:, c].reshape(n, -1) for c in range(logits.shape[1])]
            labels = [planes[:, c].reshape(n, -1) for c in range(planes.shape[1])]
            flat = lovasz_hinge_flat
        losses = []
        for x, y in zip(scores, labels):
            if not self.per_image:
                x, y = x.reshape(1, -1, *x.shape[2:]), y.reshape(1, -1)
            valid = self.task.valid(y)
            losses += [flat(xi[vi], yi[vi]) for xi, yi, vi in zip(x, y, valid) if vi.any()]
        if not losses:  # every pixel ignored: nothing to learn from this batch
            return logits.sum() * 0
        return torch.stack(losses).mean()
