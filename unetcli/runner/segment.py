"""The runner's loop: images in, submission.csv.gz (and mask PNGs on request) out.

Each step is the one `unet predict` takes, on NumPy: read the image as
training read it, resize to the training size (resize mode), cover it with
the graph (unetcli.runner.cover), map the probabilities back to the original
size (unetcli.core.placement), threshold or argmax and drop small objects
(unetcli.postprocessing.labels), run-length encode (unetcli.submission.rle) and write
rows with predict's own SubmissionWriter.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np

from unetcli.core.images import list_images, read_image, to_picture
from unetcli.core.placement import Geometry, restore_size
from unetcli.core.tiff import stack_planes
from unetcli.errors import UnetError
from unetcli.postprocessing.labels import postprocess
from unetcli.postprocessing.pictures import mask_images, write_png
from unetcli.runner.cover import Graph, with_tta
from unetcli.runner.info import InferenceInfo
from unetcli.submission.rle import rle_encode
from unetcli.submission.writer import SubmissionWriter, image_rows

SUBMISSION = "submission.csv.gz"


def model_input(image: np.ndarray, info: InferenceInfo) -> tuple[np.ndarray, Geometry]:
    """The pixels the graph sees (resized in resize mode, as albumentations' Resize does)
    and where the original lies in them."""
    height, width = image.shape[:2]
    if info.mode != "resize":
        return image, Geometry(height, width, (0.0, 0.0, float(width), float(height)))
    size_h, size_w = info.image_size
    resized = cv2.resize(image, (size_w, size_h), interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[..., None]
    return resized, Geometry(height, width, (0.0, 0.0, float(size_w), float(size_h)))


def image_probabilities(graph: Graph, info: InferenceInfo, image: np.ndarray) -> np.ndarray:
    """Probabilities (C, H, W) at the image's original size, as `unet predict` computes them."""
    pixels, geometry = model_input(image, info)
    probs = with_tta(graph, info, pixels[None])[0]
    return restore_size(probs, geometry)


def read_pixels(path: Path, info: InferenceInfo) -> np.ndarray:
    """An image as the graph takes it: read as training read it, in the graph's dtype.

    Channel-per-file images are read from every channel folder beside the first
    (IMAGES/<channel>/<stem>.*). A graph of the 8-bit era takes uint8: deeper images are then
    stretched to 0..255, as training read them then.
    """
    if info.channel_folders:
        base = path.parent.parent
        planes = []
        for folder in info.channel_folders:
            found = [base / folder / path.name]
            if not found[0].is_file() and (base / folder).is_dir():
                found = [p for p in list_images(base / folder) if p.stem == path.stem]
            if not found or not found[0].is_file():
                raise UnetError(f"image {path.stem} has no file in channel folder {base / folder}")
            planes.append(read_image(found[0], 1))
        image = stack_planes(planes, path.stem)
    else:
        image = read_image(path, info.channels)
    if image.dtype.name == info.dtype:
        return image
    if info.dtype == "uint8":
        picture = to_picture(image)
        return picture if info.channels == 3 else picture[..., :1]
    raise UnetError(
        f"image {path} reads as {image.dtype.name}, but the model was trained on {info.dtype} "
        "images (inference.json input.dtype); convert it to the training images' bit depth"
    )


def ordered_images(images: Path, order: Path | None = None) -> list[Path]:
    """The images of a folder by name, or in the order of a CSV's `img` column (Kaggle's
    sample_submission.csv, as `unet predict` orders a Carvana-layout test set); images the
    CSV does not list follow by name."""
    files = list_images(images) if images.is_dir() else []
    if not files:
        raise UnetError(
            f"{images} is not a folder of images (png, jpg, tif, bmp, gif); pass the folder "
            "to segment"
        )
    if order is None:
        return files
    if not order.is_file():
        raise UnetError(f"--order {order} does not exist; pass a CSV with an img column")
    with order.open(newline="") as f:
        rank = {row.get("img"): i for i, row in enumerate(csv.DictReader(f))}
    return sorted(files, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def predict_folder(
    graph: Graph, info: InferenceInfo, files: list[Path], out: Path, save_masks: bool = False
) -> tuple[Path, int, float]:
    """Write OUT/submission.csv.gz for `files`, in that order; (path, images, seconds)."""
    submission = out / SUBMISSION
    if submission.exists():
        raise UnetError(
            f"{submission} already exists; the runner does not overwrite it. Choose another --out."
        )
    masks = out / "masks"
    if save_masks:
        masks.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with SubmissionWriter(submission) as writer:
        for path in files:
            probs = image_probabilities(graph, info, read_pixels(path, info))
            labels = postprocess(
                probs, info.task, info.threshold, info.min_object_size, info.fill_holes
            )
            planes = labels if info.task.multilabel else [labels]
            writer.write_rows(
                [(n, rle_encode(p)) for n, p in zip(image_rows(path.name, info.task), planes)]
            )
            if save_masks:
                for suffix, picture in mask_images(labels, info.task):
                    write_png(masks / f"{path.stem}{suffix}.png", picture)
    return submission, len(files), time.perf_counter() - started
