"""Tiny generated copies of each dataset in its real on-disk layout, and zips of them.

Images are small but real files (JPEG, GIF, PNG, TIFF) with a bright shape
where the mask says, so decoding, splitting and a training step all see the
same kind of files as the published datasets.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def _shape(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(mask, (int(cx), int(cy)), (w // 5, h // 6), angle, 0, 360, 1, -1)
    return mask


def _photo(rng: np.random.Generator, mask: np.ndarray, channels: int = 3) -> np.ndarray:
    h, w = mask.shape
    image = rng.integers(0, 90, (h, w, channels)).astype(np.uint8)
    image[mask > 0] += 150
    return image if channels == 3 else image[..., 0]


def write_gif(path: Path, mask01: np.ndarray) -> None:
    gif = Image.fromarray(mask01.astype(np.uint8), mode="P")
    gif.putpalette([0, 0, 0, 255, 255, 255])
    gif.save(path)


def carvana(root: Path, cars: int = 5, views: int = 4, test: int = 3, size=(40, 60)) -> Path:
    """train/<id>_<nn>.jpg, train_masks/<id>_<nn>_mask.gif (0/1), test/, sample_submission.csv."""
    rng = np.random.default_rng(1)
    h, w = size
    for folder in ("train", "train_masks", "test"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for c in range(cars):
        car = f"{c:03d}abcdef{c:03d}"
        for v in range(1, views + 1):
            mask = _shape(rng, h, w)
            cv2.imwrite(str(root / "train" / f"{car}_{v:02d}.jpg"), _photo(rng, mask))
            write_gif(root / "train_masks" / f"{car}_{v:02d}_mask.gif", mask)
    names = [f"{t:03d}fedcba{t:03d}_01.jpg" for t in range(test)]
    for name in names:
        cv2.imwrite(str(root / "test" / name), _photo(rng, _shape(rng, h, w)))
    with (root / "sample_submission.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img", "rle_mask"])
        for name in reversed(names):  # not sorted, as on Kaggle
            writer.writerow([name, "1 1"])
    return root


BUILDING_CLASSES = [("background", 0, 0, 0), ("building", 255, 255, 255)]


def buildings(
    root: Path, counts=(3, 1, 1), size: int = 48, classes=BUILDING_CLASSES, tiff: bool = True
) -> Path:
    """label_class_dict.csv, metadata.csv, png/ (and tiff/) {train,val,test}{,_labels}."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "label_class_dict.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "r", "g", "b"])
        writer.writerows(classes)
    rows = []
    formats = [("png", ".png", ".png")] + ([("tiff", ".tiff", ".tif")] if tiff else [])
    for split, n in zip(("train", "val", "test"), counts):
        for i in range(n):
            stem = f"{22828930 + i}_15" if split == "train" else f"{split}_{i}_15"
            index = np.zeros((size, size), np.uint8)
            for k in range(1, len(classes)):
                index[_shape(rng, size, size) > 0] = k
            rgb = np.array([c[1:] for c in classes], np.uint8)[index]
            image = _photo(rng, (index > 0).astype(np.uint8))
            for fmt, image_ext, label_ext in formats:
                for folder in (root / fmt / split, root / fmt / f"{split}_labels"):
                    folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / fmt / split / f"{stem}{image_ext}"), image)
                cv2.imwrite(
                    str(root / fmt / f"{split}_labels" / f"{stem}{label_ext}"),
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                )
            rows.append([stem, split])
    with (root / "metadata.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["image_id", "split"], *rows])
    return root


def montgomery(set_root: Path, n: int = 10, size=(50, 40), mask_value: int = 255) -> Path:
    """CXR_png/MCUCXR_####_{0,1}.png (gray) with ManualMask/{left,right}Mask/ of the same names."""
    rng = np.random.default_rng(3)
    h, w = size
    for folder in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask", "ClinicalReadings"):
        (set_root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = f"MCUCXR_{i + 1:04d}_{i % 2}"
        left, right = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
        left[h // 5 : 4 * h // 5, w // 8 : 3 * w // 8] = mask_value
        right[h // 5 : 4 * h // 5, 5 * w // 8 : 7 * w // 8] = mask_value
        right[h // 5 : h // 3, 5 * w // 8 :] = mask_value * (i % 2)  # vary the shapes
        image = _photo(rng, ((left | right) > 0).astype(np.uint8), channels=1)
        cv2.imwrite(str(set_root / "CXR_png" / f"{name}.png"), image)
        cv2.imwrite(str(set_root / "ManualMask/leftMask" / f"{name}.png"), left)
        cv2.imwrite(str(set_root / "ManualMask/rightMask" / f"{name}.png"), right)
        (set_root / "ClinicalReadings" / f"{name}.txt").write_text("Patient's Sex: F\n")
    return set_root


def folder(root: Path, n: int = 10, size=(40, 52), mask_scale: int = 255, ext: str = ".png"):
    """images/<stem>.png with masks/<stem>.png holding 0/mask_scale."""
    rng = np.random.default_rng(4)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        mask = _shape(rng, *size)
        cv2.imwrite(str(root / "images" / f"cell_{i:03d}{ext}"), _photo(rng, mask))
        cv2.imwrite(str(root / "masks" / f"cell_{i:03d}.png"), mask * mask_scale)
    return root


def zip_tree(folder: Path, prefix: str = "", only: list[str] | None = None) -> bytes:
    """A zip of `folder`'s files (paths relative to it, under `prefix`), or of `only` of them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and (only is None or rel.split("/")[0] in only):
                zf.write(path, prefix + rel)
    return buffer.getvalue()


def zip_members(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _montgomery_root(root: Path) -> Path:
    """The Kaggle archive's nesting: the set lies two folders below dataset.root."""
    montgomery(root / "Montgomery" / "MontgomerySet")
    return root


#: conf/dataset/<name>.yaml -> writes fake data at that dataset's `root`, in its layout.
#: A dataset YAML added without an entry here fails tests/test_datasets_catalogue.py.
BY_DATASET = {
    "carvana": carvana,
    "massachusetts_buildings": buildings,
    "montgomery": _montgomery_root,
    "folder": folder,
}

#: Datasets whose layout generates its own files (conf overrides keep them tiny).
SELF_GENERATED = {
    "synthetic": [
        "dataset.layout.num_objects=4",
        "dataset.layout.views=2",
        "dataset.layout.num_test=2",
        "dataset.layout.height=32",
        "dataset.layout.width=48",
    ],
}
