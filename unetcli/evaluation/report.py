"""Everything `unet evaluate` writes: per-image CSV, metrics.json, sweep, pictures, TensorBoard.

Per-image work (`ImageResult`) is computed on pool threads; `EvaluationReport.add`
receives the results in input order on one thread, streams the CSV row and
adds up the totals, so memory grows only by one Dice value per image.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.evaluation.gallery import WorstImages, render_gallery, thumbnail
from unetcli.evaluation.plots import confusion_image, dice_histogram
from unetcli.evaluation.scores import CLASS_METRICS, ImageScores, foreground_classes, image_scores
from unetcli.evaluation.sweep import SweepTotals, sweep_counts, write_threshold_file
from unetcli.inference.outputs import write_png
from unetcli.metrics import METRIC_NAMES


@dataclass
class ImageResult:
    index: int
    name: str
    scores: ImageScores
    confusion: np.ndarray
    sweep: np.ndarray | None  # (T, 3) counts, binary models with probabilities only
    pred_thumb: np.ndarray
    truth_thumb: np.ndarray


def class_names(dataset_cfg, num_classes: int) -> list[str]:
    """dataset.class_names if it lists every label, else background, class1, ..."""
    labels = 2 if num_classes == 1 else num_classes
    names = dataset_cfg.get("class_names") if dataset_cfg is not None else None
    if names is not None and len(names) == labels:
        return [str(n) for n in names]
    return ["background", *(f"class{k}" for k in range(1, labels))]


def score_image(
    index: int,
    name: str,
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    *,
    prob: np.ndarray | None = None,
    thresholds: Sequence[float] = (),
    min_size: int = 0,
) -> ImageResult:
    """Scores of one image at its original resolution (runs on a pool thread)."""
    scores, cm = image_scores(pred, truth, num_classes, name)
    sweep = None
    if prob is not None and thresholds and num_classes == 1:
        sweep = sweep_counts(prob, truth, thresholds, min_size)
    if num_classes == 1:
        truth = (truth > 0).astype(np.uint8)
    return ImageResult(index, name, scores, cm, sweep, thumbnail(pred), thumbnail(truth))


class EvaluationReport:
    """Accumulates ImageResults in order and writes the report files at the end."""

    def __init__(
        self,
        run_dir: Path,
        num_classes: int,
        names: list[str],
        thresholds: Sequence[float],
        worst: int,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.num_classes = num_classes
        self.names = names
        self.classes = foreground_classes(num_classes)
        self.multi = num_classes > 2
        labels = 2 if num_classes == 1 else num_classes
        self.confusion = np.zeros((labels, labels), dtype=np.int64)
        self.sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.class_sums = {c: dict.fromkeys(CLASS_METRICS, 0.0) for c in self.classes}
        self.dice: list[float] = []
        self.sweep = SweepTotals(thresholds) if thresholds and num_classes == 1 else None
        self.worst = WorstImages(worst)
        self.csv_path = self.run_dir / "per_image.csv"
        self._file = self.csv_path.open("w", newline="")
        self._csv = csv.writer(self._file)
        header = ["image", *METRIC_NAMES]
        if self.multi:
            header += [f"{m}_{self.names[c]}" for c in self.classes for m in CLASS_METRICS]
        self._csv.writerow(header)

    def add(self, result: ImageResult) -> None:
        m = result.scores.metrics
        row = [result.name, *(f"{m[k]:.6f}" for k in METRIC_NAMES)]
        for c in self.classes:
            values = result.scores.per_class[c]
            for k in CLASS_METRICS:
                self.class_sums[c][k] += values[k]
                if self.multi:
                    row.append(f"{values[k]:.6f}")
        self._csv.writerow(row)
        for k in METRIC_NAMES:
            self.sums[k] += m[k]
        self.confusion += result.confusion
        self.dice.append(m["dice"])
        if self.sweep is not None and result.sweep is not None:
            self.sweep.add(result.sweep)
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
        report: dict = {**meta, "images": n, "metrics": means}
        # Carvana's leaderboard score: the mean over images of each image's Dice.
        report["carvana_mean_dice"] = means["dice"]
        if self.multi:
            report["per_class"] = {
                self.names[c]: {k: v / max(n, 1) for k, v in sums.items()}
                for c, sums in self.class_sums.items()
            }
            report["confusion_matrix"] = {
                "classes": self.names,
                "rows_truth_columns_prediction": self.confusion.tolist(),
            }
            self._write_confusion()
        files = {"per_image": self.csv_path.name}
        if self.sweep is not None and self.sweep.images:
            rows = self.sweep.rows()
            best = self.sweep.best()
            with (self.run_dir / "threshold_sweep.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=["threshold", "dice", "iou"])
                writer.writeheader()
                for r in rows:
                    writer.writerow({k: f"{v:.6f}" for k, v in r.items()})
            report["threshold_sweep"] = rows
            report["best_threshold"] = best
            write_threshold_file(
                self.run_dir,
                {"threshold": best["threshold"], "dice": best["dice"], **(threshold_meta or {})},
            )
            files["threshold_sweep"] = "threshold_sweep.csv"
            files["threshold"] = "threshold.json"
        histogram = dice_histogram(self.dice)
        write_png(self.run_dir / "dice_histogram.png", histogram)
        files["dice_histogram"] = "dice_histogram.png"
        gallery = render_gallery(self.worst, self.num_classes, read_image)
        if gallery is not None:
            write_png(self.run_dir / "worst.png", gallery)
            files["worst"] = "worst.png"
        report["files"] = files
        tmp = self.run_dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, self.run_dir / "metrics.json")
        self._tensorboard(report, histogram, gallery, tb_step)
        return report

    def _write_confusion(self) -> None:
        with (self.run_dir / "confusion_matrix.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["truth \\ prediction", *self.names])
            for name, row in zip(self.names, self.confusion.tolist()):
                writer.writerow([name, *row])
        write_png(
            self.run_dir / "confusion_matrix.png", confusion_image(self.confusion, self.names)
        )

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
            if self.multi:
                image = confusion_image(self.confusion, self.names)
                writer.add_image("eval/confusion_matrix", image, step, dataformats="HWC")
        finally:
            writer.close()
