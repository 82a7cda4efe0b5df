"""Multilabel segmentation end to end: overlapping classes in one mask folder per class.

The data are generated here: a red disc (class 1) and a green square (class 2)
that overlap on a grey background; some images show no square (no file in its
folder), and a strip of one class's masks is marked 255, "not labelled".
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from unetcli.commands import augment, evaluate, predict, train
from unetcli.config.location import config_dir
from unetcli.core.drawing import class_colour
from unetcli.datasets.folder import FolderLayout
from unetcli.errors import UnetError
from unetcli.submission.rle import rle_decode

FOLDERS = ["masks_disc", "masks_square"]


def draw(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and its (2, H, W) planes: a disc and a square that overlap."""
    h, w = size
    planes = np.zeros((2, h, w), np.uint8)
    cy, cx, r = h // 2 + rng.integers(-3, 4), w // 2 + rng.integers(-3, 4), min(h, w) // 4
    cv2.circle(planes[0], (int(cx), int(cy)), int(r), 1, -1)
    top, left = int(cy) - rng.integers(0, r), int(cx) - rng.integers(0, r)
    planes[1, top : top + r + 4, left : left + r + 4] = 1
    image = rng.normal(110, 12, (h, w, 3))
    image[..., 0] += 110 * planes[0]  # the disc is red
    image[..., 1] += 110 * planes[1]  # the square is green; both: yellow
    return np.clip(image, 0, 255).astype(np.uint8), planes


def make_data(root: Path, n: int = 12, n_test: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for folder in ["images", "test", *FOLDERS]:
        (root / folder).mkdir(parents=True)
    for i in range(n):
        image, planes = draw(rng, (32, 32))
        cv2.imwrite(str(root / "images" / f"im{i}.png"), image[..., ::-1])
        if i % 4 == 3:
            planes[1] = 0  # no square in this image: no file in masks_square/
        disc = planes[0].copy()
        if i % 3 == 0:
            disc[:3] = 255  # the top rows of the disc masks nobody labelled
        cv2.imwrite(str(root / "masks_disc" / f"im{i}.png"), disc)
        if planes[1].any():
            cv2.imwrite(str(root / "masks_square" / f"im{i}.png"), planes[1])
    for i in range(n_test):
        image, _ = draw(rng, (40, 36))  # another size: predict resizes back
        cv2.imwrite(str(root / "test" / f"t{i}.png"), image[..., ::-1])
    return root


def layout_of(root: Path, **kwargs) -> FolderLayout:
    args = {"num_classes": 2, "task": "multilabel", "class_folders": FOLDERS, "ignore_index": 255}
    return FolderLayout(root, **{**args, **kwargs})


def test_class_folders_read_as_planes_missing_files_as_absent_classes(tmp_path):
    root = make_data(tmp_path / "data", n=4, n_test=1)
    layout = layout_of(root)
    layout.prepare()
    samples = layout.labelled_samples()
    assert len(samples) == 4
    planes = layout.read_mask(samples[3].mask)  # im3: no square file
    assert planes.shape == (2, 32, 32) and planes[0].any() and not planes[1].any()
    first = layout.read_mask(samples[0].mask)
    assert (first[0, :3] == 255).all() and set(np.unique(first[1])) <= {0, 1}
    assert len(layout.mask_files(samples[3])) == 1 and len(layout.mask_files(samples[0])) == 2
    layout.check(samples)


def test_the_check_covers_every_class_folder(tmp_path):
    root = make_data(tmp_path / "data", n=4, n_test=1)
    cv2.imwrite(str(root / "masks_square" / "stray.png"), np.zeros((32, 32), np.uint8))
    bad = np.full((32, 32), 7, np.uint8)
    bad[0, 0] = 0
    bad[0, 1] = 3
    cv2.imwrite(str(root / "masks_square" / "im1.png"), bad)
    layout = layout_of(root)
    with pytest.raises(UnetError) as err:
        layout.check(layout.labelled_samples())
    assert "masks_square/stray.png" in str(err.value)  # a mask without an image
    assert "masks_square/im1.png holds values" in str(err.value)


def test_class_folders_and_the_task_must_agree(tmp_path):
    with pytest.raises(UnetError, match="dataset.layout.class_folders=\\[folder1"):
        FolderLayout(tmp_path, num_classes=2, task="multilabel")
    with pytest.raises(UnetError, match="add dataset.task=multilabel"):
        FolderLayout(tmp_path, num_classes=2, class_folders=FOLDERS)
    with pytest.raises(UnetError, match="lists 2 folders.*dataset.num_classes=2"):
        layout_of(tmp_path, num_classes=3)
    (tmp_path / "images").mkdir()
    with pytest.raises(UnetError, match="class_folders names masks_disc"):
        layout_of(tmp_path).prepare()


def command(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def dataset_overrides(root: Path) -> list[str]:
    return [
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.task=multilabel",
        "dataset.num_classes=2",
        f"dataset.layout.class_folders=[{','.join(FOLDERS)}]",
        "dataset.ignore_index=255",
        "dataset.image_size=[32,32]",
        "dataset.validation_size=0.25",
    ]


def test_the_augment_preview_draws_both_overlapping_classes(tmp_path):
    root = make_data(tmp_path / "data", n=4, n_test=1)
    out = tmp_path / "look.png"
    cfg = command("augment", [*dataset_overrides(root), f"augment.output={out}"])
    assert augment.run(cfg) == out
    grid = cv2.imread(str(out))[..., ::-1]
    for k in (1, 2):
        assert (grid == np.asarray(class_colour(k), np.uint8)).all(-1).sum() > 20


@pytest.mark.slow
def test_train_evaluate_predict_a_multilabel_folder_dataset(tmp_path):
    root = make_data(tmp_path / "data")
    cpu = ["hardware=cpu", "hardware.num_workers=0"]
    train.run(
        command(
            "train",
            [
                *cpu,
                *dataset_overrides(root),
                "model.widths=[4,8]",
                "loss=bce_dice",
                "optimizer.lr=0.01",
                "trainer.epochs=3",
                "trainer.batch_size=3",
                "trainer.progress=false",
                f"paths.run_dir={tmp_path / 'train'}",
            ],
        )
    )
    checkpoint = tmp_path / "train" / "checkpoints" / "best.pt"
    common = [f"checkpoint={checkpoint}", *cpu]
    report = evaluate.run(
        command(
            "evaluate",
            [*common, f"paths.run_dir={tmp_path / 'eval'}", "evaluate.progress=false"],
        )
    )
    assert report["task"] == "multilabel" and report["images"] == 3
    assert set(report["per_class"]) == {"class1", "class2"}
    assert set(report["class_counts"]) == {"class1", "class2"}
    assert "confusion_matrix" not in report and "best_threshold" in report
    with (tmp_path / "eval" / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"dice_class1", "iou_class1", "dice_class2", "iou_class2"} <= set(
        rows[0]
    )
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["files"]["class_counts"] == "class_counts.csv"

    out = tmp_path / "predict"
    predict.run(
        command(
            "predict",
            [
                *common,
                f"paths.run_dir={out}",
                "predict.progress=false",
                "predict.save_masks=true",
                "predict.save_overlays=true",
                "predict.save_probabilities=true",
            ],
        )
    )
    with gzip.open(out / "submission.csv.gz", "rt", newline="") as f:
        submission = list(csv.DictReader(f))
    tests = sorted((root / "test").iterdir())
    assert len(submission) == len(tests) * 2  # images x classes
    assert [r["img"] for r in submission[:2]] == [f"{tests[0].name}_1", f"{tests[0].name}_2"]
    for image in tests:
        for k in (1, 2):
            mask = cv2.imread(str(out / "masks" / f"{image.stem}_{k}.png"), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (40, 36) and set(np.unique(mask)) <= {0, 255}
            row = next(r for r in submission if r["img"] == f"{image.name}_{k}")
            np.testing.assert_array_equal(rle_decode(row["rle_mask"], mask.shape), mask > 0)
            assert (out / "probabilities" / f"{image.stem}_class{k}.png").is_file()
        overlay = cv2.imread(str(out / "overlays" / image.name))
        assert overlay.shape == (40, 36, 3)
