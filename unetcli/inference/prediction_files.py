"""What `unet predict` writes: the submission (rows per image, resumable) and pictures.

Binary and multiclass tasks write one row per image (`img` = the image's file name,
Carvana's format). A multilabel task writes one row per image and class (`img` =
`<image file name>_<k>`, k = 1..C in the order of the dataset's classes), the Kaggle
convention for overlapping classes (e.g. Severstal's ImageId_ClassId); the rows of one
image are consecutive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from unetcli.core.drawing import overlay
from unetcli.core.images import to_picture
from unetcli.datasets.base import Layout
from unetcli.errors import UnetError
from unetcli.inference.engine import Engine, Finished, Share
from unetcli.inference.options import InferenceOptions
from unetcli.postprocessing.labels import postprocess
from unetcli.postprocessing.pictures import mask_images, probability_images, write_png
from unetcli.submission.rle import rle_encode
from unetcli.submission.writer import SubmissionWriter, image_rows

SUBMISSION = "submission.csv.gz"
PICTURES = ("masks", "probabilities", "overlays")  # predict.save_<name> writes <name>/

Rows = list[tuple[str, str]]


def output_target(opts: DictConfig, run_dir: str) -> tuple[Path, Path | None]:
    """(output folder, submission path), or no path when an earlier run already completed it.

    A finished submission is never overwritten; an interrupted one (`.tmp`, or the parts of
    several processes) is continued only with predict.resume=true.
    """
    output_dir = Path(opts.output_dir) if opts.output_dir else Path(run_dir)
    submission = output_dir / SUBMISSION
    partial = submission.with_name(submission.name + ".tmp")
    if submission.exists():
        if opts.resume:
            print(f"predict: {submission} is already complete; nothing to resume")
            return output_dir, None
        raise UnetError(
            f"{submission} already exists; unetcli does not overwrite it. Choose another "
            "predict.output_dir (or leave it unset for a new run folder)."
        )
    parts = sorted(output_dir.glob(f"{SUBMISSION}.part*")) if output_dir.is_dir() else []
    if (partial.exists() or parts) and not opts.resume:
        found = partial if partial.exists() else parts[0]
        raise UnetError(
            f"{output_dir} holds an interrupted submission ({found.name}). Add "
            "predict.resume=true to continue it, or choose another predict.output_dir."
        )
    if opts.resume and not opts.output_dir:
        raise UnetError(
            "predict.resume=true continues the submission in an earlier run's folder: name it "
            "with predict.output_dir=outputs/predict/<run>"
        )
    return output_dir, submission


class ImageFiles:
    """The sink of `unet predict`: each image's labels become its submission rows (on a pool
    thread) and, on request, mask, probability and overlay PNGs; rows are written in order."""

    def __init__(
        self, layout: Layout, options: InferenceOptions, output_dir: Path, save: dict[str, bool]
    ) -> None:
        self.layout = layout
        self.options = options
        self.task = options.task
        self.dirs = {key: output_dir / key for key in PICTURES if save[key]}
        for folder in self.dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        self.writer: SubmissionWriter | None = None

    def finish(self, image: Finished) -> Rows:
        options = self.options
        labels = postprocess(
            image.probabilities,
            self.task,
            options.threshold,
            options.min_object_size,
            options.fill_holes,
        )
        self._pictures(image, labels)
        planes = labels if self.task.multilabel else [labels]
        names = image_rows(image.sample.name, self.task)
        return [(name, rle_encode(plane)) for name, plane in zip(names, planes)]

    def take(self, rows: Rows) -> None:
        assert self.writer is not None
        self.writer.write_rows(rows)

    def _pictures(self, image: Finished, labels) -> None:
        sample, stem = image.sample, Path(image.sample.name).stem
        if "masks" in self.dirs:
            for suffix, picture in mask_images(labels, self.task):
                write_png(self.dirs["masks"] / f"{stem}{suffix}.png", picture)
        if "probabilities" in self.dirs:
            for suffix, picture in probability_images(image.probabilities, self.task):
                write_png(self.dirs["probabilities"] / f"{stem}{suffix}.png", picture)
        if "overlays" in self.dirs:
            truth = self.layout.read_mask(sample.mask) if sample.mask is not None else None
            pixels = to_picture(self.layout.read_image(sample.image))
            picture = overlay(pixels, labels, truth, ignore_index=self.task.ignore_index)
            write_png(self.dirs["overlays"] / f"{stem}.png", picture)


@dataclass(frozen=True)
class Written:
    """What one process wrote: rows in its file, and images an earlier run had written."""

    rows: int
    resumed_images: int


def write_share(
    engine: Engine, share: Share, sink: ImageFiles, target: Path, opts: DictConfig
) -> Written:
    """This process's rows into `target` (the submission, or its part with several processes).

    With predict.resume=true the rows an interrupted run left in `<target>.tmp` are kept and
    prediction continues after them; a part that was finished before is left as it is.
    """
    task = engine.predictor.options.task
    rows = [name for s in share.samples for name in image_rows(s.name, task)]
    if target.exists():
        return Written(len(rows), len(share.samples))
    writer = SubmissionWriter(
        target, resume=bool(opts.resume), expected=rows, rows_per_member=opts.rows_per_member
    )
    with writer:
        per_image = len(image_rows(share.samples[0].name, task)) if share.samples else 1
        done = writer.rows // per_image
        if done:
            print(
                f"predict: resuming after {writer.rows} complete rows ({done} of "
                f"{len(share.samples)} images)"
            )
        sink.writer = writer
        if share.samples:
            engine.run(share, sink, done=done)
    return Written(writer.rows, done)
