import pytest
import torch

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.metrics import per_image_metrics

BINARY = Task("binary", 1)


def test_binary_metrics_match_hand_computed_values():
    pred = torch.tensor([[[1, 1, 0, 0], [1, 0, 0, 0]]])  # 3 predicted
    truth = torch.tensor([[[1, 0, 0, 0], [1, 1, 1, 0]]])  # 4 true, 2 overlap
    m = per_image_metrics(pred, truth, BINARY)
    tp, fp, fn, tn = 2, 1, 2, 3
    assert m["dice"].item() == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["iou"].item() == pytest.approx(tp / (tp + fp + fn))
    assert m["precision"].item() == pytest.approx(tp / (tp + fp))
    assert m["recall"].item() == pytest.approx(tp / (tp + fn))
    assert m["accuracy"].item() == pytest.approx((tp + tn) / 8)


def test_empty_masks_score_one_when_predicted_empty_and_zero_otherwise():
    empty = torch.zeros(1, 3, 3, dtype=torch.long)
    full = torch.ones(1, 3, 3, dtype=torch.long)
    both_empty = per_image_metrics(empty, empty, BINARY)
    assert all(v.item() == 1.0 for v in both_empty.values())
    missed = per_image_metrics(empty, full, BINARY)
    assert missed["dice"].item() == 0 and missed["precision"].item() == 0
    assert missed["recall"].item() == 0


def test_metrics_are_per_image():
    pred = torch.stack([torch.ones(2, 2), torch.zeros(2, 2)]).long()
    truth = torch.ones(2, 2, 2, dtype=torch.long)
    assert per_image_metrics(pred, truth, BINARY)["dice"].tolist() == [1.0, 0.0]


def test_multiclass_metrics_average_foreground_classes():
    truth = torch.tensor([[[0, 1], [2, 2]]])
    pred = torch.tensor([[[0, 1], [2, 1]]])
    m = per_image_metrics(pred, truth, Task("multiclass", 3))
    # class 1: tp 1, fp 1 -> dice 2/3; class 2: tp 1, fn 1 -> dice 2/3
    assert m["dice"].item() == pytest.approx(2 / 3)


def test_multilabel_metrics_are_the_mean_of_each_plane_s_binary_scores():
    truth = torch.tensor([[[[1, 1], [0, 0]], [[0, 1], [1, 1]]]])  # planes overlap at (0, 1)
    pred = torch.tensor([[[[1, 0], [0, 0]], [[0, 1], [1, 1]]]])
    m = per_image_metrics(pred, truth, Task("multilabel", 2))
    planes = [per_image_metrics(pred[:, c], truth[:, c], BINARY) for c in range(2)]
    for name, value in m.items():
        assert value.item() == pytest.approx((planes[0][name] + planes[1][name]).item() / 2)
    assert m["dice"].item() == pytest.approx((2 / 3 + 1) / 2)


def test_task_labels_threshold_or_argmax_each_kind():
    logits = torch.tensor([[[[-1.0, 0.1]]]])
    probs = BINARY.probabilities(logits)
    assert BINARY.labels(probs, 0.5).tolist() == [[[0, 1]]]
    assert BINARY.labels(probs, 0.6).tolist() == [[[0, 0]]]
    multi = Task("multiclass", 3)
    three = torch.tensor([[[[0.0]], [[2.0]], [[1.0]]]])
    assert multi.labels(multi.probabilities(three)).tolist() == [[[1]]]
    many = Task("multilabel", 3)  # each channel on its own: two classes at once
    assert many.labels(many.probabilities(three)).tolist() == [[[[0]], [[1]], [[1]]]]


@pytest.mark.parametrize(
    ("task", "shape"),
    [
        (Task("binary", 1, ignore_index=255), (3, 6, 7)),
        (Task("multiclass", 4, ignore_index=255), (3, 6, 7)),
        (Task("multilabel", 2, ignore_index=255), (3, 2, 6, 7)),
    ],
    ids=lambda v: getattr(v, "kind", ""),
)
def test_an_ignored_pixel_changes_no_metric_whatever_is_predicted_there(task, shape):
    torch.manual_seed(0)
    truth = torch.randint(0, task.label_count, shape)
    truth[..., 1:4, 2:5] = 255
    truth[1] = 255  # an image nobody labelled scores like an empty, correct one
    pred = torch.randint(0, task.label_count, shape)
    other = torch.where(truth == 255, torch.randint(0, task.label_count, shape), pred)
    a, b = per_image_metrics(pred, truth, task), per_image_metrics(other, truth, task)
    for name in a:
        assert torch.equal(a[name], b[name]), name
        assert a[name][1].item() == 1.0
    # ... and equals the score of the labelled pixels alone.
    keep = truth[0] != 255
    if not task.multilabel:
        sub = per_image_metrics(pred[0][keep][None, None], truth[0][keep][None, None], task)
        assert a["dice"][0].item() == pytest.approx(sub["dice"].item())


def test_predictions_of_the_wrong_shape_name_the_task_keys():
    with pytest.raises(UnetError, match="dataset.task"):
        per_image_metrics(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), Task("multilabel", 2))


def test_an_ignore_index_that_is_also_a_class_is_refused():
    with pytest.raises(UnetError, match="dataset.ignore_index=2 is also a class"):
        Task("multiclass", 3, ignore_index=2)
    assert Task.from_config({"num_classes": 1}) == Task("binary", 1)  # checkpoints before task
