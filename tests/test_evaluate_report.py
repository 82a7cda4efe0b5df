"""Evaluation scores, threshold sweep, gallery and plots, and the multi-class report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.evaluation.gallery import WorstImages, render_gallery
from unetcli.evaluation.plots import dice_histogram
from unetcli.evaluation.report import EvaluationReport, Scorer
from unetcli.evaluation.scores import image_scores
from unetcli.evaluation.thresholds import ThresholdTotals, threshold_counts
from unetcli.inference.threshold_file import read_threshold_file, write_threshold_file
from unetcli.metrics import METRIC_NAMES, per_image_metrics

TASKS = [
    Task("binary", 1),
    Task("multiclass", 2),
    Task("multiclass", 4),
    Task("multilabel", 3),
    Task("multiclass", 4, ignore_index=255),
    Task("multilabel", 3, ignore_index=255),
]


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_scores_agree_with_the_training_metrics(task):
    rng = np.random.default_rng(task.num_classes)
    shape = (task.num_classes, 30, 40) if task.multilabel else (30, 40)
    labels = task.label_count
    for _ in range(5):
        truth = rng.integers(0, labels, shape).astype(np.uint8)
        pred = np.where(rng.random(shape) < 0.7, truth, rng.integers(0, labels, shape))
        pred = pred.astype(np.uint8)
        if rng.random() < 0.3:
            truth[:] = 0  # empty truth: a correct empty prediction scores 1
        if task.ignore_index is not None:
            truth[rng.random(shape) < 0.2] = task.ignore_index
        scores, counts = image_scores(pred, truth, task)
        reference = per_image_metrics(
            torch.from_numpy(pred)[None], torch.from_numpy(truth)[None], task
        )
        for name in METRIC_NAMES:
            assert scores.metrics[name] == pytest.approx(float(reference[name][0]), abs=1e-6)
        scored = task.valid_np(truth).sum()
        assert counts.sum() == scored


def test_a_mask_with_a_class_the_model_lacks_is_named():
    task = Task("multiclass", 3)
    with pytest.raises(UnetError, match="cat_01.*value 5.*dataset.num_classes"):
        image_scores(np.zeros((4, 4), np.uint8), np.full((4, 4), 5, np.uint8), task, "cat_01")


def test_sweep_counts_match_direct_thresholding_and_pick_the_best():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 50), np.uint8)
    truth[10:30, 10:40] = 1
    prob = np.clip(truth * 0.55 + rng.normal(0.2, 0.1, truth.shape), 0, 1).astype(np.float32)
    thresholds = [0.1, 0.3, 0.5, 0.7, 0.9]
    counts = threshold_counts(prob, truth, thresholds)
    for (tp, fp, fn), t in zip(counts, thresholds):
        pred = prob > t
        assert (tp, fp, fn) == (
            (pred & (truth > 0)).sum(),
            (pred & (truth == 0)).sum(),
            (~pred & (truth > 0)).sum(),
        )
    totals = ThresholdTotals(thresholds)
    totals.add(counts[None])
    best = totals.best()
    # Object ~0.75, background ~0.2: 0.5 separates them best.
    assert best["threshold"] == 0.5 and best["dice"] > 0.95
    # A size filter removes the lone background speck above 0.5, not the object.
    filtered = threshold_counts(prob, truth, [0.5], min_size=5)[0]
    assert counts[2][1] > 0 and filtered[1] == 0 and filtered[0] == counts[2][0]


def test_threshold_file_round_trip_and_errors(tmp_path):
    write_threshold_file(tmp_path, {"threshold": 0.35, "dice": 0.9})
    assert read_threshold_file(tmp_path)["threshold"] == 0.35
    assert read_threshold_file(tmp_path / "threshold.json")["path"].endswith("threshold.json")
    with pytest.raises(UnetError, match="threshold_from"):
        read_threshold_file(tmp_path / "elsewhere")
    (tmp_path / "bad.json").write_text('{"dice": 1}')
    with pytest.raises(UnetError, match="not a threshold file"):
        read_threshold_file(tmp_path / "bad.json")


def test_worst_images_keeps_the_lowest_and_draws_one_row_each():
    worst = WorstImages(3)
    block = np.zeros((20, 30), np.uint8)
    for i, dice in enumerate([0.9, 0.1, 0.5, 0.95, 0.2, 0.3]):
        worst.add(i, f"img{i}", dice, block, block)
    assert [e.name for e in worst.entries()] == ["img1", "img4", "img5"]
    picture = render_gallery(
        worst, Task("binary", 1), lambda i, name: np.full((40, 60, 3), 90, np.uint8)
    )
    assert picture.dtype == np.uint8 and picture.ndim == 3
    # Three rows of 128-px panels (20 px enlarged x6 = 120) plus headers; four panels wide.
    assert picture.shape[0] > 3 * 120 and picture.shape[1] >= 4 * 180


def test_histogram_draws_bars_where_the_values_are():
    values = [0.991, 0.992, 0.992, 0.997, 0.998]
    image = dice_histogram(values)
    assert image.shape == (420, 720, 3)
    bars = (image[:, :, 2] > 150) & (image[:, :, 0] < 100)  # the steel-blue bars
    cols = np.flatnonzero(bars.any(0))
    # Range 0.99..1: bars sit in the left half and near the right end, not all in one bar.
    assert cols.min() < 720 * 0.4 and cols.max() > 720 * 0.7


def test_multi_class_report_writes_per_class_columns_and_confusion(tmp_path):
    rng = np.random.default_rng(3)
    task = Task("multiclass", 3)
    report = EvaluationReport(tmp_path, task, ["bg", "road", "roof"], [0.5], worst=2)
    total = np.zeros((3, 3), np.int64)
    for i in range(4):
        truth = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        pred = np.where(rng.random((16, 16)) < 0.8, truth, 0).astype(np.uint8)
        result = Scorer(task, [0.5])(i, f"im{i}.png", pred, truth)
        total += result.counts
        report.add(result)
    content = report.finish({"split": "val"}, read_image=None, tb_step=3)
    with (tmp_path / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"dice_road", "iou_roof", "recall_road"} <= set(rows[0])
    means = [float(r["dice"]) for r in rows]
    assert content["metrics"]["dice"] == pytest.approx(np.mean(means), abs=1e-5)
    assert content["carvana_mean_dice"] == content["metrics"]["dice"]
    assert content["confusion_matrix"]["rows_truth_columns_prediction"] == total.tolist()
    with (tmp_path / "confusion_matrix.csv").open() as f:
        lines = list(csv.reader(f))
    assert lines[0][1:] == ["bg", "road", "roof"] and int(lines[2][2]) == total[1, 1]
    assert "threshold_sweep" not in content  # argmax: nothing to sweep
    assert json.loads((tmp_path / "metrics.json").read_text())["per_class"]["road"]["dice"] > 0
    for name in ("worst.png", "dice_histogram.png", "confusion_matrix.png"):
        assert (tmp_path / name).is_file()
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Scalars("eval/dice")[0].step == 3
    assert {"eval/worst", "eval/dice_histogram", "eval/confusion_matrix"} <= set(
        acc.Tags()["images"]
    )


def test_multilabel_report_has_per_class_columns_counts_and_a_sweep_over_all_planes(tmp_path):
    rng = np.random.default_rng(5)
    task = Task("multilabel", 2, ignore_index=255)
    report = EvaluationReport(tmp_path, task, ["cat", "dog"], [0.3, 0.5, 0.7], worst=2)
    scorer = Scorer(task, [0.3, 0.5, 0.7])
    totals = np.zeros((2, 2, 2), np.int64)
    for i in range(3):
        truth = (rng.random((2, 12, 14)) > 0.5).astype(np.uint8)
        truth[1, :2] = 255
        probs = np.clip(truth * 0.6 + rng.random(truth.shape) * 0.35, 0, 1).astype(np.float32)
        pred = task.labels_np(probs, 0.5)
        result = scorer(i, f"im{i}.png", pred, truth, probs)
        assert result.threshold_counts.shape == (2, 3, 3)  # planes x thresholds x (tp, fp, fn)
        totals += result.counts
        report.add(result)
    content = report.finish({"split": "val"}, read_image=None)
    with (tmp_path / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"dice_cat", "dice_dog", "iou_cat", "iou_dog"} <= set(rows[0])
    for row in rows:  # an image's Dice is the mean of its planes'
        mean = (float(row["dice_cat"]) + float(row["dice_dog"])) / 2
        assert float(row["dice"]) == pytest.approx(mean, abs=1e-5)
    assert set(content["per_class"]) == {"cat", "dog"}
    assert "confusion_matrix" not in content and not (tmp_path / "confusion_matrix.csv").exists()
    assert content["class_counts"]["dog"]["tp"] == totals[1, 1, 1]
    assert content["class_counts"]["cat"]["fn"] == totals[0, 1, 0]
    assert sum(content["class_counts"]["dog"].values()) == 3 * 10 * 14  # ignored rows left out
    assert (tmp_path / "class_counts.csv").is_file() and (tmp_path / "threshold.json").is_file()
    # 0.5 separates truth (>= 0.6) from background (< 0.35) on every plane.
    assert content["best_threshold"]["threshold"] == 0.5
    assert content["best_threshold"]["dice"] == pytest.approx(1.0)
