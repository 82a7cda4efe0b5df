"""A Kaggle-format submission scored against a folder of true masks (`unet score`).

No model runs: each row is decoded against its true mask and scored as `unet evaluate`
scores a prediction, into the same report files. Rows are decoded on a few threads, a
bounded chunk at a time, and added in file order.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetcli.core.console import metrics_table
from unetcli.core.task import Task
from unetcli.datasets.io import IMAGE_EXTENSIONS, list_images, read_image, read_mask
from unetcli.errors import UnetError
from unetcli.evaluation.report import EvaluationReport, ImageResult, Scorer
from unetcli.evaluation.runs import print_evaluation_summary
from unetcli.submission.reader import submission_rows
from unetcli.submission.rle import rle_decode

#: A Kaggle submission scored against true masks: one binary mask per row (Carvana's format).
SUBMISSION_TASK = Task("binary", 1)


def mask_index(folder: Path) -> dict[str, Path]:
    """Mask files by the stem of the image they belong to (`<stem>_mask.gif` or `<stem>.png`)."""
    if not folder.is_dir():
        raise UnetError(
            f"masks={folder} is not a folder; point it at the folder of true masks "
            "(e.g. train_masks/, or test_masks/ of the synthetic set)"
        )
    index: dict[str, Path] = {}
    for path in list_images(folder):
        stem = path.stem
        if stem.endswith("_mask"):
            stem = stem[: -len("_mask")]
        index.setdefault(stem, path)
    if not index:
        raise UnetError(f"masks={folder} holds no mask images ({', '.join(IMAGE_EXTENSIONS)})")
    return index


def image_index(folder: Path | None) -> dict[str, Path]:
    """Images by stem, for the gallery's image column (empty without images=)."""
    if folder is None:
        return {}
    if not folder.is_dir():
        raise UnetError(f"images={folder} is not a folder of images")
    return {p.stem: p for p in list_images(folder)}


@dataclass(frozen=True)
class RowScorer:
    """One row against its true mask: an ImageResult, or the row's name when it has no mask."""

    path: Path
    masks: dict[str, Path]
    scorer: Scorer

    def __call__(self, row: tuple[int, str, str]) -> ImageResult | str:
        number, name, rle = row
        mask_path = self.masks.get(Path(name).stem)
        if mask_path is None:
            return name
        truth = (read_mask(mask_path) > 0).astype(np.uint8)
        try:
            pred = rle_decode(rle, truth.shape)
        except ValueError as err:
            raise UnetError(
                f"{self.path} line {number} ({name}) does not decode against its true mask "
                f"{mask_path} ({truth.shape[1]}x{truth.shape[0]}): {err}"
            ) from err
        return self.scorer(number - 2, name, pred, truth)


def _score_rows(
    score: RowScorer, report: EvaluationReport, threads: int
) -> tuple[set[str], list[str]]:
    """Score every row into `report`, in file order; (stems scored, rows without a mask)."""
    scored: set[str] = set()
    unmatched: list[str] = []
    rows = submission_rows(score.path)
    with ThreadPoolExecutor(threads, thread_name_prefix="unet-score") as pool:
        while chunk := list(itertools.islice(rows, 4 * threads)):
            for result in pool.map(score, chunk):
                if isinstance(result, str):
                    unmatched.append(result)
                else:
                    scored.add(Path(result.name).stem)
                    report.add(result)
    return scored, unmatched


@dataclass(frozen=True)
class SubmissionFiles:
    """What `unet score` reads: the submission, the true masks, optionally the images."""

    submission: Path
    masks: Path
    images: Path | None


def score_submission(files: SubmissionFiles, run_dir: Path, worst: int, threads: int) -> dict:
    """Score the submission into run_dir's report files; what metrics.json holds."""
    started, path = time.time(), files.submission
    masks, images = mask_index(files.masks), image_index(files.images)
    report = EvaluationReport(run_dir, SUBMISSION_TASK, ["background", "object"], [], worst)
    try:
        scorer = RowScorer(path, masks, Scorer(SUBMISSION_TASK))
        scored, unmatched = _score_rows(scorer, report, threads)
    finally:
        report.close()
    if not scored:
        raise UnetError(
            f"no row of {path} has a true mask in {files.masks} (rows name images like "
            f"{unmatched[0] if unmatched else '<none>'}); point masks= at the masks of "
            "the images the submission covers"
        )
    without_row = sorted(set(masks) - scored)

    def read(_index: int, name: str) -> np.ndarray | None:
        found = images.get(Path(name).stem)
        return read_image(found) if found is not None else None

    result = report.finish(
        {"submission": str(path), "masks": str(files.masks), "rows_without_mask": len(unmatched),
         "masks_without_row": len(without_row), "seconds": round(time.time() - started, 2)},
        read_image=read if images else None,
    )  # fmt: skip
    print(f"\n{path}: {len(scored)} images scored\n{metrics_table(result['metrics'])}")
    extra = [("submission", str(path))]
    if unmatched:
        extra.append(("not scored", f"{len(unmatched)} rows have no mask, e.g. {unmatched[0]}"))
    if without_row:
        missing = f"{len(without_row)} masks have no row, e.g. {without_row[0]}"
        extra.append(("missing rows", missing))
    print_evaluation_summary("unet score: submission scored", result, run_dir, extra)
    return result
