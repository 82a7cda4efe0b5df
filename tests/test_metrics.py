import pytest
import torch

from unetcli.metrics import per_image_metrics, predict_labels


def test_binary_metrics_match_hand_computed_values():
    pred = torch.tensor([[[1, 1, 0, 0], [1, 0, 0, 0]]])  # 3 predicted
    truth = torch.tensor([[[1, 0, 0, 0], [1, 1, 1, 0]]])  # 4 true, 2 overlap
    m = per_image_metrics(pred, truth, num_classes=1)
    tp, fp, fn, tn = 2, 1, 2, 3
    assert m["dice"].item() == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["iou"].item() == pytest.approx(tp / (tp + fp + fn))
    assert m["precision"].item() == pytest.approx(tp / (tp + fp))
    assert m["recall"].item() == pytest.approx(tp / (tp + fn))
    assert m["accuracy"].item() == pytest.approx((tp + tn) / 8)


def test_empty_masks_score_one_when_predicted_empty_and_zero_otherwise():
    empty = torch.zeros(1, 3, 3, dtype=torch.long)
    full = torch.ones(1, 3, 3, dtype=torch.long)
    both_empty = per_image_metrics(empty, empty, 1)
    assert all(v.item() == 1.0 for v in both_empty.values())
    missed = per_image_metrics(empty, full, 1)
    assert missed["dice"].item() == 0 and missed["precision"].item() == 0
    assert missed["recall"].item() == 0


def test_metrics_are_per_image():
    pred = torch.stack([torch.ones(2, 2), torch.zeros(2, 2)]).long()
    truth = torch.ones(2, 2, 2, dtype=torch.long)
    assert per_image_metrics(pred, truth, 1)["dice"].tolist() == [1.0, 0.0]


def test_multiclass_metrics_average_foreground_classes():
    truth = torch.tensor([[[0, 1], [2, 2]]])
    pred = torch.tensor([[[0, 1], [2, 1]]])
    m = per_image_metrics(pred, truth, num_classes=3)
    # class 1: tp 1, fp 1 -> dice 2/3; class 2: tp 1, fn 1 -> dice 2/3
    assert m["dice"].item() == pytest.approx(2 / 3)


def test_predict_labels_thresholds_or_argmaxes():
    logits = torch.tensor([[[[-1.0, 0.1]]]])
    assert predict_labels(logits, 0.5).tolist() == [[[0, 1]]]
    assert predict_labels(logits, 0.6).tolist() == [[[0, 0]]]
    multi = torch.tensor([[[[0.0]], [[2.0]], [[1.0]]]])
    assert predict_labels(multi).tolist() == [[[1]]]
