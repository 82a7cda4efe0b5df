import math

import pytest
import torch

from unetcli.losses import BCEDiceLoss, BCELoss, SoftDiceLoss


def test_bce_matches_hand_computed_value():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    target = torch.tensor([[[0, 1], [1, 0]]])
    expected = (
        -math.log(0.5)
        - math.log(1 / (1 + math.exp(-2)))
        - math.log(1 / (1 + math.exp(1)))
        - math.log(1 - 1 / (1 + math.exp(-3)))
    ) / 4
    assert BCELoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_soft_dice_matches_hand_computed_value():
    # probabilities 0.5 everywhere (logit 0) against a mask with 1 of 4 pixels set:
    # intersection 0.5, sums 2 + 1; dice = (2*0.5 + 1) / (3 + 1) = 0.5
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss(smooth=1.0)(logits, target).item() == pytest.approx(0.5)


def test_losses_are_near_zero_for_perfect_and_larger_for_worse_predictions():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    perfect = (target.float() * 2 - 1).unsqueeze(1) * 20
    worse = perfect * -1
    for loss in (BCELoss(), SoftDiceLoss(smooth=1e-6), BCEDiceLoss()):
        assert loss(perfect, target).item() < 1e-3
        assert loss(worse, target).item() > 0.9


def test_bce_dice_is_the_weighted_sum():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 5, 7, requires_grad=True)
    target = (torch.rand(2, 5, 7) > 0.5).long()
    combo = BCEDiceLoss(bce_weight=0.3, dice_weight=2.0)(logits, target)
    expected = 0.3 * BCELoss()(logits, target) + 2.0 * SoftDiceLoss()(logits, target)
    assert combo.item() == pytest.approx(expected.item())
    combo.backward()
    assert torch.isfinite(logits.grad).all()


def test_multiclass_dice_uses_softmax_over_classes():
    target = torch.tensor([[[0, 1], [2, 2]]])
    onehot = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert SoftDiceLoss(smooth=1e-6)(onehot * 30, target).item() < 1e-3
    assert SoftDiceLoss()(torch.zeros(1, 3, 2, 2), target).item() > 0.3


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="same size"):
        SoftDiceLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 3, dtype=torch.long))
