"""Which images a run predicts: a folder of the user's, or the dataset's held-out images."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from unetcli.core.task import Task
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.io import list_images
from unetcli.errors import UnetError
from unetcli.submission.writer import image_rows


def held_out_images(layout: Layout) -> list[Sample]:
    """The dataset's held-out (test) images, in submission order, or a clear error."""
    try:
        return layout.held_out_samples()
    except NotImplementedError as err:
        raise UnetError(
            f"the dataset in {layout.root} defines no test images; predict a folder of "
            "images with predict.input=DIR"
        ) from err


def folder_images(folder: str) -> list[Sample]:
    """The images of `predict.input`, by name."""
    path = Path(folder)
    if not path.is_dir():
        raise UnetError(f"predict.input={folder} is not a folder; point it at a folder of images")
    images = list_images(path)
    if not images:
        raise UnetError(f"predict.input={folder} holds no image files (png, jpg, tif, bmp, gif)")
    return [Sample(p, None, p.stem, p.name) for p in images]


def images_to_predict(input_folder: str | None, layout: Layout, task: Task) -> list[Sample]:
    """`predict.input`'s images, else the held-out images, checked to make a whole submission."""
    if input_folder:
        channels = getattr(layout, "channel_folders", None)  # DIR/<channel>/<stem>.*
        return folder_images(str(Path(input_folder) / channels[0]) if channels else input_folder)
    samples = held_out_images(layout)
    check_complete(samples, layout, [n for s in samples for n in image_rows(s.name, task)])
    return samples


def check_complete(samples: list[Sample], layout: Layout, rows: list[str]) -> None:
    """Every test image exactly once; and every image (or row) sample_submission.csv lists."""
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        raise UnetError(
            f"the test images of {layout.root} repeat names ({', '.join(dupes[:5])}); a "
            "submission needs each image exactly once"
        )
    sample_csv = layout.root / "sample_submission.csv"
    if not sample_csv.is_file():
        return
    with sample_csv.open(newline="") as f:
        listed = [row["img"] for row in csv.DictReader(f) if row.get("img")]
    missing = sorted(set(listed) - set(names) - set(rows))
    if missing:
        raise UnetError(
            f"{sample_csv} lists {len(missing)} image(s) that are not in the test folder, e.g. "
            f"{', '.join(missing[:5])}; the submission would be incomplete. Complete the test "
            "folder (e.g. `unet download` again) or predict a folder with predict.input=DIR."
        )
