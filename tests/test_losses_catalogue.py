"""The loss catalogue: each conf/loss/*.yaml builds; minimum for a perfect prediction, larger
for worse ones, finite gradients, and agreement with a direct formula; the paper's weight map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import REPO
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses import (
    BCEDiceLoss,
    BCELoss,
    CrossEntropyLoss,
    FocalLoss,
    LovaszLoss,
    SoftDiceLoss,
    SoftJaccardLoss,
    WeightedCrossEntropyLoss,
    WeightMapCache,
    unet_weight_map,
)
from unetcli.losses.weight_map import class_weight_map

LOSS_FILES = sorted((REPO / "conf" / "loss").glob("*.yaml"))


BINARY = Task("binary", 1)
TASKS = [BINARY, Task("multiclass", 3), Task("multilabel", 3)]


def target_pair(task: Task) -> torch.Tensor:
    """Two 12x12 masks with a few objects: class indices (binary: 0/1), or overlapping planes."""
    target = torch.zeros(2, 12, 12, dtype=torch.long)
    target[0, 2:7, 3:9] = 1
    target[1, 6:11, 1:5] = 1
    if task.kind == "binary":
        return target
    target[0, 8:11, 8:12] = 2
    target[1, 1:4, 7:11] = 2
    if task.kind == "multiclass":
        return target
    planes = F.one_hot(target, 3).permute(0, 3, 1, 2).clone()
    planes[:, 2, 4:9, 2:8] = 1  # class 3 overlaps the others
    return planes


def logits_for(target: torch.Tensor, task: Task, strength: float) -> torch.Tensor:
    """Logits that predict `target` with confidence `strength` (negative: predict it wrong)."""
    if task.kind == "binary":
        return (target.float() * 2 - 1).unsqueeze(1) * strength
    if task.kind == "multilabel":
        return (target.float() * 2 - 1) * strength
    onehot = F.one_hot(target, task.num_classes).permute(0, 3, 1, 2).float()
    return (onehot * 2 - 1) * strength


# Every loss with every task it accepts (ce and weighted_ce refuse multilabel: test_losses.py).
ACCEPTED = [
    pytest.param(path, task, id=f"{path.stem}-{task.kind}")
    for path in LOSS_FILES
    for task in TASKS
    if not (task.multilabel and path.stem in ("ce", "weighted_ce"))
]


@pytest.mark.parametrize(("path", "task"), ACCEPTED)
def test_each_loss_is_minimal_when_perfect_larger_when_worse_with_finite_gradients(path, task):
    loss_fn = instantiate(OmegaConf.load(path), task=task)
    target = target_pair(task)
    channels = task.num_classes
    perfect = loss_fn(logits_for(target, task, 12.0), target).item()
    uncertain = loss_fn(torch.zeros(2, channels, 12, 12), target).item()
    wrong = loss_fn(logits_for(target, task, -3.0), target).item()
    assert perfect < 0.02, f"{path.stem}: {perfect}"
    assert perfect < uncertain < wrong, (perfect, uncertain, wrong)
    torch.manual_seed(0)
    logits = torch.randn(2, channels, 12, 12, requires_grad=True)
    loss_fn(logits, target).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# --- direct formulas on small examples ----------------------------------------------------

LOGITS = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
TARGET = torch.tensor([[[0, 1], [1, 0]]])
P = torch.sigmoid(LOGITS)[0, 0]  # probabilities of the foreground


def test_bce_pos_weight_and_multiclass_one_vs_rest():
    t = TARGET[0].float()
    expected = -(3.0 * t * P.log() + (1 - t) * (1 - P).log()).mean()
    assert BCELoss(BINARY, pos_weight=3.0)(LOGITS, TARGET).item() == pytest.approx(
        expected.item(), rel=1e-6
    )
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 1], [2, 1]]])
    onehot = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    p = torch.sigmoid(logits)
    expected = -(onehot * p.log() + (1 - onehot) * (1 - p).log()).mean()
    assert BCELoss(Task("multiclass", 3))(logits, target).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_bce_dice_weights_are_configurable():
    combo = BCEDiceLoss(BINARY, bce_weight=0.25, dice_weight=3.0, smooth=0.5, pos_weight=2.0)
    bce, dice = BCELoss(BINARY, 2.0), SoftDiceLoss(BINARY, 0.5)
    expected = 0.25 * bce(LOGITS, TARGET) + 3.0 * dice(LOGITS, TARGET)
    assert combo(LOGITS, TARGET).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ce_is_mean_negative_log_likelihood_with_class_weights():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]], [[-1.0, 3.0]]]])  # (1, 3, 1, 2)
    target = torch.tensor([[[0, 2]]])
    p = torch.softmax(logits, 1)[0, :, 0]
    nll = [-math.log(p[0, 0]), -math.log(p[2, 1])]
    three = Task("multiclass", 3)
    assert CrossEntropyLoss(three)(logits, target).item() == pytest.approx(sum(nll) / 2, rel=1e-6)
    weighted = CrossEntropyLoss(three, [1.0, 1.0, 4.0])(logits, target).item()
    assert weighted == pytest.approx((nll[0] + 4 * nll[1]) / 5, rel=1e-6)
    # One channel: cross-entropy over (background, foreground) is the binary cross-entropy.
    assert CrossEntropyLoss(BINARY)(LOGITS, TARGET).item() == pytest.approx(
        BCELoss(BINARY)(LOGITS, TARGET).item()
    )


def test_focal_loss_formula_and_gamma_zero_is_cross_entropy():
    t = TARGET[0]
    pt = torch.where(t == 1, P, 1 - P)
    alpha_t = torch.where(t == 1, 0.25, 0.75)
    expected = (-alpha_t * (1 - pt) ** 2 * pt.log()).mean()
    got = FocalLoss(BINARY, gamma=2.0, alpha=0.25)(LOGITS, TARGET).item()
    assert got == pytest.approx(expected.item(), rel=1e-6)
    logits = torch.randn(2, 4, 5, 5)
    target = torch.randint(0, 4, (2, 5, 5))
    assert FocalLoss(Task("multiclass", 4), gamma=0.0)(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-5
    )


def test_soft_jaccard_formula():
    t = TARGET[0].float()
    inter = (P * t).sum()
    union = P.sum() + t.sum() - inter
    expected = 1 - (inter + 1.0) / (union + 1.0)
    assert SoftJaccardLoss(BINARY, 1.0)(LOGITS, TARGET).item() == pytest.approx(
        expected.item(), rel=1e-6
    )


def hard_iou_loss(pred: np.ndarray, truth: np.ndarray) -> float:
    inter = np.logical_and(pred, truth).sum()
    union = np.logical_or(pred, truth).sum()
    return 1 - inter / union


def test_lovasz_hinge_equals_one_minus_iou_for_unit_errors():
    # Margins of exactly 1 (right) or 0 (wrong) make each hinge error 0 or 1, where the
    # Lovasz extension equals the set function itself: 1 - IoU of the hard prediction.
    rng = np.random.default_rng(0)
    truth = rng.random((6, 7)) > 0.5
    wrong = rng.random((6, 7)) < 0.3
    sign = np.where(truth, 1.0, -1.0)
    logits = np.where(wrong, 0.0, sign)
    pred = np.where(wrong, ~truth, truth)
    loss = LovaszLoss(BINARY)(
        torch.tensor(logits).view(1, 1, 6, 7).float(), torch.tensor(truth).view(1, 6, 7).long()
    )
    assert loss.item() == pytest.approx(hard_iou_loss(pred, truth), rel=1e-6)
    # Scaling all errors by t scales the loss by t (positive homogeneity of the extension).
    half = np.where(wrong, 0.5 * sign, sign)
    scaled = LovaszLoss(BINARY)(
        torch.tensor(half).view(1, 1, 6, 7).float(), torch.tensor(truth).view(1, 6, 7).long()
    )
    assert scaled.item() == pytest.approx(0.5 * hard_iou_loss(pred, truth), rel=1e-6)


def test_lovasz_softmax_approaches_mean_iou_loss_of_confident_predictions():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (1, 6, 6))
    pred = truth.copy()
    pred[0, :2] = (truth[0, :2] + 1) % 3
    logits = F.one_hot(torch.tensor(pred), 3).permute(0, 3, 1, 2).float() * 30
    expected = np.mean([hard_iou_loss(pred == c, truth == c) for c in range(3)])
    got = LovaszLoss(Task("multiclass", 3), per_image=False)(logits, torch.tensor(truth)).item()
    assert got == pytest.approx(expected, abs=1e-4)


def test_weighted_ce_is_the_weight_map_times_the_pixel_nll():
    logits = torch.randn(1, 3, 4, 5)
    target = torch.randint(0, 3, (1, 4, 5))
    weight = torch.rand(1, 4, 5) * 5
    nll = F.cross_entropy(logits, target, reduction="none")
    three = Task("multiclass", 3)
    loss = WeightedCrossEntropyLoss(three)(logits, target, weight)
    assert loss.item() == pytest.approx((weight * nll).mean().item(), rel=1e-6)
    # Without a map it computes the paper's map from the mask itself.
    fn = WeightedCrossEntropyLoss(three)
    own = torch.from_numpy(fn.weight_map(target[0].numpy().astype(np.uint8)))[None]
    assert fn(logits, target).item() == pytest.approx(fn(logits, target, own).item(), rel=1e-6)


# --- the weight map -----------------------------------------------------------------------


def brute_force_weight_map(mask: np.ndarray, objects: list[np.ndarray], w0: float, sigma: float):
    """The paper's border term with distances from an exhaustive search (no OpenCV)."""
    ys, xs = np.mgrid[: mask.shape[0], : mask.shape[1]]
    dists = []
    for obj in objects:
        oy, ox = np.nonzero(obj)
        d = np.sqrt((ys[..., None] - oy) ** 2 + (xs[..., None] - ox) ** 2).min(-1)
        dists.append(d)
    d = np.sort(np.stack(dists), axis=0)
    border = w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return np.where(mask == 0, border, 0.0)


def three_objects() -> tuple[np.ndarray, list[np.ndarray]]:
    mask = np.zeros((24, 30), np.uint8)
    a = np.zeros_like(mask, bool)
    b = np.zeros_like(mask, bool)
    c = np.zeros_like(mask, bool)
    a[4:14, 3:12] = True
    b[4:14, 14:22] = True  # a two-pixel gap (columns 12 and 13) between a and b
    c[17:22, 5:27] = True
    for obj in (a, b, c):
        mask[obj] = 1
    return mask, [a, b, c]


def test_weight_map_matches_the_paper_definition():
    mask, objects = three_objects()
    w = unet_weight_map(mask, w0=10, sigma=5, class_weights=None)
    expected = 1.0 + brute_force_weight_map(mask, objects, 10, 5)
    np.testing.assert_allclose(w, expected, atol=2e-3)
    # In the gap: d1 = 1, d2 = 2 -> 1 + 10 exp(-9 / 50).
    assert w[8, 12] == pytest.approx(1 + 10 * math.exp(-9 / 50), abs=1e-3)


def test_gap_between_touching_objects_weighs_more_than_the_class_weight():
    mask, _ = three_objects()
    w = unet_weight_map(mask)  # balanced class weights, w0 = 10, sigma = 5
    wc = class_weight_map(mask)
    gap = w[5:13, 12:14]
    assert (gap > wc[5:13, 12:14] + 5).all()
    far = w[0, 29]  # a background corner far from every gap
    assert gap.min() > 3 * far
    # Balanced weights: rarer class heavier, and they average to 1 over the mask.
    assert wc[mask == 1][0] > wc[mask == 0][0]
    assert wc.mean() == pytest.approx(1.0, rel=1e-5)
    # A single object has no gaps: the map is the class weight alone.
    single = np.zeros((20, 20), np.uint8)
    single[5:15, 5:15] = 1
    np.testing.assert_allclose(unet_weight_map(single), class_weight_map(single))


def test_weight_map_options_border_everywhere_fixed_weights_and_multiclass():
    mask, objects = three_objects()
    everywhere = unet_weight_map(mask, class_weights=[1.0, 2.0], border_on="all")
    assert everywhere[8, 10] > 2.0  # inside object a, near b
    mask2 = mask.copy()
    mask2[objects[1]] = 2  # b becomes another class: still a separate object
    w = unet_weight_map(mask2, class_weights=[1.0, 1.0, 1.0])
    assert w[8, 12] == pytest.approx(1 + 10 * math.exp(-9 / 50), abs=1e-3)


def test_weight_map_cache_computes_once_per_mask_at_the_training_size():
    calls = []

    def compute(mask):
        calls.append(mask.shape)
        return unet_weight_map(mask)

    cache = WeightMapCache(compute, size=(12, 15))
    mask, _ = three_objects()  # 24 x 30: twice the training size
    first = cache(7, mask)
    second = cache(7, mask)
    assert calls == [(12, 15)]  # computed once, at the training size
    assert first.shape == mask.shape and np.array_equal(first, second)
    assert len(cache) == 1
    cache(8, mask)
    assert len(calls) == 2


def test_multilabel_losses_are_their_binary_selves_on_each_plane():
    torch.manual_seed(3)
    task = Task("multilabel", 2)
    logits = torch.randn(2, 2, 6, 7)
    target = (torch.rand(2, 2, 6, 7) > 0.6).long()
    planes = [(logits[:, c : c + 1], target[:, c]) for c in range(2)]

    def per_plane(make) -> float:
        return float(np.mean([make(BINARY)(x, t).item() for x, t in planes]))

    # Focal with gamma 0 is BCE; a plane-wise alpha weighs each plane's foreground.
    assert FocalLoss(task, gamma=0.0)(logits, target).item() == pytest.approx(
        BCELoss(task)(logits, target).item(), rel=1e-5
    )
    assert FocalLoss(task, alpha=[0.25, 0.25])(logits, target).item() == pytest.approx(
        per_plane(lambda t: FocalLoss(t, alpha=0.25)), rel=1e-5
    )
    for make in (LovaszLoss, BCELoss):
        assert make(task)(logits, target).item() == pytest.approx(per_plane(make), rel=1e-5)
    with pytest.raises(UnetError, match="loss.alpha has 3 values.*2 values"):
        FocalLoss(task, alpha=[0.1, 0.2, 0.3])
