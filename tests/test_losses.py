"""Losses on small examples: hand-computed values, the task's target shapes, ignore_index."""

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import REPO
from unetcli.config.instantiate import build
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses import BCEDiceLoss, BCELoss, CrossEntropyLoss, SoftDiceLoss

BINARY = Task("binary", 1)
LOSS_FILES = sorted((REPO / "conf" / "loss").glob("*.yaml"))


def test_bce_matches_hand_computed_value():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    target = torch.tensor([[[0, 1], [1, 0]]])
    expected = (
        -math.log(0.5)
        - math.log(1 / (1 + math.exp(-2)))
        - math.log(1 / (1 + math.exp(1)))
        - math.log(1 - 1 / (1 + math.exp(-3)))
    ) / 4
    assert BCELoss(BINARY)(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_soft_dice_matches_hand_computed_value():
    # probabilities 0.5 everywhere (logit 0) against a mask with 1 of 4 pixels set:
    # intersection 0.5, sums 2 + 1; dice = (2*0.5 + 1) / (3 + 1) = 0.5
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss(BINARY, smooth=1.0)(logits, target).item() == pytest.approx(0.5)


def test_losses_are_near_zero_for_perfect_and_larger_for_worse_predictions():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    perfect = (target.float() * 2 - 1).unsqueeze(1) * 20
    worse = perfect * -1
    for loss in (BCELoss(BINARY), SoftDiceLoss(BINARY, smooth=1e-6), BCEDiceLoss(BINARY)):
        assert loss(perfect, target).item() < 1e-3
        assert loss(worse, target).item() > 0.9


def test_bce_dice_is_the_weighted_sum():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 5, 7, requires_grad=True)
    target = (torch.rand(2, 5, 7) > 0.5).long()
    combo = BCEDiceLoss(BINARY, bce_weight=0.3, dice_weight=2.0)(logits, target)
    expected = 0.3 * BCELoss(BINARY)(logits, target) + 2.0 * SoftDiceLoss(BINARY)(logits, target)
    assert combo.item() == pytest.approx(expected.item())
    combo.backward()
    assert torch.isfinite(logits.grad).all()


def test_multiclass_dice_uses_softmax_over_classes():
    task = Task("multiclass", 3)
    target = torch.tensor([[[0, 1], [2, 2]]])
    onehot = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert SoftDiceLoss(task, smooth=1e-6)(onehot * 30, target).item() < 1e-3
    assert SoftDiceLoss(task)(torch.zeros(1, 3, 2, 2), target).item() > 0.3


def test_multilabel_dice_scores_each_plane_with_a_sigmoid():
    task = Task("multilabel", 2)
    target = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    target[0, 0, :2] = 1
    target[0, 1, 1:3] = 1  # row 1 holds both classes: they overlap
    perfect = (target.float() * 2 - 1) * 30
    assert SoftDiceLoss(task, smooth=1e-6)(perfect, target).item() < 1e-3
    # Plane 1 wrong, plane 0 right: half the planes lost.
    half = perfect.clone()
    half[:, 1] *= -1
    assert SoftDiceLoss(task, smooth=1e-6)(half, target).item() == pytest.approx(0.5, abs=1e-3)


def test_user_fixable_shape_and_value_problems_name_the_config_keys():
    with pytest.raises(UnetError, match="dataset.task.*dataset.num_classes"):
        SoftDiceLoss(BINARY)(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(UnetError, match="values \\[2\\].*dataset.num_classes=1"):
        BCELoss(BINARY)(torch.zeros(1, 1, 2, 2), torch.tensor([[[0, 2], [1, 0]]]))
    multi = Task("multiclass", 3)
    with pytest.raises(UnetError, match="model.num_classes must equal dataset.num_classes"):
        CrossEntropyLoss(multi)(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(UnetError, match="class_folders"):  # planes expected, a map given
        BCELoss(Task("multilabel", 2))(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2).long())


@pytest.mark.parametrize("path", LOSS_FILES, ids=lambda p: p.stem)
def test_losses_refuse_tasks_they_cannot_train_when_built(path):
    node = OmegaConf.load(path)
    task = Task("multilabel", 2)
    if path.stem in ("ce", "weighted_ce"):
        with pytest.raises(UnetError, match=f"loss={path.stem} cannot train a multilabel.*bce"):
            build(node, "loss", task=task)
    else:
        assert build(node, "loss", task=task).task == task


def test_class_weights_of_the_wrong_length_are_refused_when_built():
    with pytest.raises(UnetError, match="loss.class_weights has 2 values.*3 classes"):
        CrossEntropyLoss(Task("multiclass", 3), class_weights=[1.0, 2.0])


# --- ignore_index: an ignored pixel changes nothing, whatever is predicted there ------------

TASKS = {
    "binary": Task("binary", 1, ignore_index=255),
    "multiclass": Task("multiclass", 3, ignore_index=255),
    "multilabel": Task("multilabel", 2, ignore_index=255),
}


def ignore_case(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random logits and a target with a block of ignored pixels (per plane for multilabel)."""
    task = TASKS[kind]
    torch.manual_seed(1)
    logits = torch.randn(2, task.num_classes, 10, 12)
    if kind == "multilabel":
        target = (torch.rand(2, 2, 10, 12) > 0.5).long()
        target[:, 0, 3:7, 4:9] = 255
        target[1, 1, :2] = 255
    else:
        target = torch.randint(0, task.label_count, (2, 10, 12))
        target[:, 3:7, 4:9] = 255
    return logits, target


# Every loss with every task it accepts (ce and weighted_ce refuse multilabel: tested above).
ACCEPTED = [
    pytest.param(path, kind, id=f"{path.stem}-{kind}")
    for path in LOSS_FILES
    for kind in TASKS
    if not (kind == "multilabel" and path.stem in ("ce", "weighted_ce"))
]


@pytest.mark.parametrize(("path", "kind"), ACCEPTED)
def test_ignored_pixels_change_nothing_whatever_is_predicted_there(path, kind):
    loss_fn = instantiate(OmegaConf.load(path), task=TASKS[kind])
    logits, target = ignore_case(kind)
    ignored = target == 255
    if kind != "multilabel":
        ignored = ignored.unsqueeze(1).expand_as(logits)
    changed = torch.where(ignored, torch.randn_like(logits) * 50, logits)
    changed.requires_grad_(True)
    base = loss_fn(logits, target)
    other = loss_fn(changed, target)
    assert torch.isfinite(base) and other.item() == pytest.approx(base.item(), rel=1e-5, abs=1e-6)
    other.backward()
    assert (changed.grad[ignored] == 0).all() and changed.grad[~ignored].abs().sum() > 0


def test_a_batch_with_every_pixel_ignored_gives_zero_loss_not_nan():
    task = TASKS["multiclass"]
    target = torch.full((1, 4, 4), 255)
    for loss_fn in (CrossEntropyLoss(task), BCELoss(task), SoftDiceLoss(task, smooth=1.0)):
        assert torch.isfinite(loss_fn(torch.randn(1, 3, 4, 4), target))
