"""Everything `unet evaluate` writes: per-image CSV, metrics.json, sweep, pictures, TensorBoard.

Per-image work (`ImageResult`, from a `Scorer`) is computed on pool threads;
`EvaluationReport.add` receives the results in input order on one thread,
streams the CSV row and adds up the totals, so memory grows only by one Dice
value per image.

Tasks with several foreground classes (multiclass with C > 2, every
multilabel task) get per-class columns and means. Multiclass tasks also get
the confusion matrix; multilabel classes overlap, so they get per-class
pixel counts (tp, fp, fn, tn) instead.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.core.task import Task
from unetcli.evaluation.gallery import WorstImages, render_gallery, thumbnail
from unetcli.evaluation.plots import confusion_image, dice_histogram
from unetcli.evaluation.scores import CLASS_METRICS, ImageScores, image_scores
from unetcli.evaluation.thresholds import ThresholdTotals, threshold_counts
from unetcli.inference.threshold_file import write_threshold_file
from unetcli.metrics import METRIC_NAMES
from unetcli.postprocessing.pictures import write_png


@dataclass
class ImageResult:
    index: int
    name: str
    scores: ImageScores
    counts: np.ndarray  # pixel counts, see unetcli.evaluation.scores
    threshold_counts: np.ndarray | None  # (planes, T, 3); thresholded tasks with probabilities
    pred_thumb: np.ndarray
    truth_thumb: np.ndarray


def class_names(dataset_cfg, task: Task) -> list[str]:
    """Names indexed like the task's classes: labels 0..L-1, or multilabel planes 0..C-1.

    dataset.class_names if it lists every one, else background, class1, ...
    (multilabel: class1..classC, the numbers of the submission rows).
    """
    count = task.num_classes if task.multilabel else task.label_count
    names = dataset_cfg.get("class_names") if dataset_cfg is not None else None
    if names is not None and len(names) == count:
        return [str(n) for n in names]
    if task.multilabel:
        return [f"class{task.class_number(c)}" for c in range(count)]
    return ["background", *(f"class{k}" for k in range(1, count))]


@dataclass(frozen=True)
class Scorer:
    """Scores one image at its original resolution (called on pool threads).

    With probabilities and `thresholds`, binary and multilabel tasks also
    count each threshold for the sweep (`min_size` and `holes` as predict applies them).
    """

    task: Task
    thresholds: Sequence[float] = ()
    min_size: int = 0
    holes: bool = False

    def __call__(
        self,
        index: int,
        name: str,
        pred: np.ndarray,
        truth: np.ndarray,
        probs: np.ndarray | None = None,
    ) -> ImageResult:
        scores, counts = image_scores(pred, truth, self.task, name)
        swept = None if probs is None else self.threshold_counts(probs, truth)
        return ImageResult(index, name, scores, counts, swept, thumbnail(pred), thumbnail(truth))

    def threshold_counts(self, probs: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
        """(planes, T, 3) counts of probabilities (C, H, W); None where nothing is swept."""
        if not self.thresholds or self.task.kind == "multiclass":
            return None
        planes = truth if self.task.multilabel else truth[None]
        valid = self.task.valid_np(planes)
        return np.stack(
            [
                threshold_counts(p, t, self.thresholds, self.min_size, v, self.holes)
                for p, t, v in zip(probs, planes, valid)
            ]
        )


class EvaluationReport:
    """Accumulates ImageResults in order and writes the report files at the end."""

    def __init__(
        self,
        run_dir: Path,
        task: Task,
        names: list[str],
        thresholds: Sequence[float],
        worst: int,
        fold_column: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        # Out-of-fold evaluation: per_image.csv says which fold's model scored each image;
        # the caller sets `fold` before adding that fold's images.
        self.fold_column = fold_column
        self.fold: int | None = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.task = task
        self.names = names
        self.classes = task.foreground
        self.per_class_columns = task.multilabel or len(self.classes) > 1
        self.confusion_matrix = not task.multilabel and task.label_count > 2
        labels = task.label_count
        shape = (task.num_classes, 2, 2) if task.multilabel else (labels, labels)
        self.counts = np.zeros(shape, dtype=np.int64)
        self.sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.class_sums = {c: dict.fromkeys(CLASS_METRICS, 0.0) for c in self.classes}
        self.dice: list[float] = []
        swept = thresholds and task.kind != "multiclass"
        self.threshold_totals = ThresholdTotals(thresholds) if swept else None
        self.worst = WorstImages(worst)
        self.csv_path = self.run_dir / "per_image.csv"
        self._file = self.csv_path.open("w", newline="")
        self._csv = csv.writer(self._file)
        header = ["image", *(["fold"] if fold_column else []), *METRIC_NAMES]
        if self.per_class_columns:
            header += [f"{m}_{self.names[c]}" for c in self.classes for m in CLASS_METRICS]
        self._csv.writerow(header)

    def add(self, result: ImageResult) -> None:
        m = result.scores.metrics
        fold = [self.fold] if self.fold_column else []
        row = [result.name, *fold, *(f"{m[k]:.6f}" for k in METRIC_NAMES)]
        for c in self.classes:
            values = result.scores.per_class[c]
            for k in CLASS_METRICS:
                self.class_sums[c][k] += values[k]
                if self.per_class_columns:
                    row.append(f"{values[k]:.6f}")
        self._csv.writerow(row)
        for k in METRIC_NAMES:
            self.sums[k] += m[k]
        self.counts += result.counts
        self.dice.append(m["dice"])
        if self.threshold_totals is not None and result.threshold_counts is not None:
            self.threshold_totals.add(result.threshold_counts)
        self.worst.add(result.index, result.name, m["dice"], result.pred_thumb, result.truth_thumb)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def means(self) -> dict[str, float]:
        n = max(len(self.dice), 1)
        return {k: v / n for k, v in self.sums.items()}

    def finish(
        self,
        meta: dict,
        read_image: Callable[[int, str], np.ndarray | None] | None,
        tb_step: int = 0,
        threshold_meta: dict | None = None,
    ) -> dict:
        """Write metrics.json and the rest; returns the metrics.json content."""
        self.close()
        n = len(self.dice)
        means = self.means()
        report: dict = {**meta, "task": self.task.kind, "images": n, "metrics": means}
        # Carvana's leaderboard score: the mean over images of each image's Dice.
        report["carvana_mean_dice"] = means["dice"]
        files = {"per_image": self.csv_path.name}
        if self.per_class_columns:
            report["per_class"] = {
                self.names[c]: {k: v / max(n, 1) for k, v in sums.items()}
                for c, sums in self.class_sums.items()
            }
        if self.confusion_matrix:
            report["confusion_matrix"] = {
                "classes": self.names,
                "rows_truth_columns_prediction": self.counts.tolist(),
            }
            files.update(self._write_confusion())
        if self.task.multilabel:
            report["class_counts"] = self._class_counts()
            files.update(self._write_class_counts(report["class_counts"]))
        if self.threshold_totals is not None and self.threshold_totals.images:
            files.update(self._write_sweep(report, threshold_meta or {}))
        histogram = dice_histogram(self.dice)
        write_png(self.run_dir / "dice_histogram.png", histogram)
        files["dice_histogram"] = "dice_histogram.png"
        gallery = render_gallery(self.worst, self.task, read_image)
        if gallery is not None:
            write_png(self.run_dir / "worst.png", gallery)
            files["worst"] = "worst.png"
        report["files"] = files
        tmp = self.run_dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, self.run_dir / "metrics.json")
        self._tensorboard(report, histogram, gallery, tb_step)
        return report

    def _write_sweep(self, report: dict, threshold_meta: dict) -> dict[str, str]:
        """threshold_sweep.csv and threshold.json; adds the sweep and its best to `report`."""
        assert self.threshold_totals is not None
        rows = self.threshold_totals.rows()
        best = self.threshold_totals.best()
        with (self.run_dir / "threshold_sweep.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["threshold", "dice", "iou"])
            writer.writeheader()
            for r in rows:
                writer.writerow({k: f"{v:.6f}" for k, v in r.items()})
        report["threshold_sweep"] = rows
        report["best_threshold"] = best
        write_threshold_file(
            self.run_dir, {"threshold": best["threshold"], "dice": best["dice"], **threshold_meta}
        )
        return {"threshold_sweep": "threshold_sweep.csv", "threshold": "threshold.json"}

    def _write_confusion(self) -> dict[str, str]:
        with (self.run_dir / "confusion_matrix.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["truth \\ prediction", *self.names])
            for name, row in zip(self.names, self.counts.tolist()):
                writer.writerow([name, *row])
        write_png(self.run_dir / "confusion_matrix.png", confusion_image(self.counts, self.names))
        return {"confusion_matrix": "confusion_matrix.csv"}

    def _class_counts(self) -> dict[str, dict[str, int]]:
        """Scored pixels of each multilabel class over the dataset: tp, fp, fn, tn."""
        return {
            self.names[c]: {
                "tp": int(cm[1, 1]),
                "fp": int(cm[0, 1]),
                "fn": int(cm[1, 0]),
                "tn": int(cm[0, 0]),
            }
            for c, cm in enumerate(self.counts)
        }

    def _write_class_counts(self, counts: dict[str, dict[str, int]]) -> dict[str, str]:
        with (self.run_dir / "class_counts.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "tp", "fp", "fn", "tn"])
            for name, c in counts.items():
                writer.writerow([name, c["tp"], c["fp"], c["fn"], c["tn"]])
        return {"class_counts": "class_counts.csv"}

    def _tensorboard(self, report: dict, histogram, gallery, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        try:
            for k, v in report["metrics"].items():
                writer.add_scalar(f"eval/{k}", v, step)
            for name, values in report.get("per_class", {}).items():
                for k, v in values.items():
                    writer.add_scalar(f"eval_class/{name}/{k}", v, step)
            for r in report.get("threshold_sweep", []):
                writer.add_scalar("sweep/dice", r["dice"], round(r["threshold"] * 100))
                writer.add_scalar("sweep/iou", r["iou"], round(r["threshold"] * 100))
            if self.dice:
                writer.add_histogram("eval/dice_per_image", np.asarray(self.dice), step)
            writer.add_image("eval/dice_histogram", histogram, step, dataformats="HWC")
            if gallery is not None:
                writer.add_image("eval/worst", gallery, step, dataformats="HWC")
            if self.confusion_matrix:
                image = confusion_image(self.counts, self.names)
                writer.add_image("eval/confusion_matrix", image, step, dataformats="HWC")
        finally:
            writer.close()
