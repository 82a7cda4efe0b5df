"""`unet predict`: segment test images and write a Kaggle-style gzip RLE submission.

Binary and multiclass tasks write one row per image (`img` = the image's
file name, Carvana's format). A multilabel task writes one row per image and
class (`img` = `<image file name>_<k>`, k = 1..C in the order of the
dataset's classes), the Kaggle convention for overlapping classes (e.g.
Severstal's ImageId_ClassId); the rows of one image are consecutive.
"""

from __future__ import annotations

import copy
import csv
import time
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from unetcli.build import make_loader
from unetcli.config_checks import check_config
from unetcli.config_dir import config_dir
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.io import list_images
from unetcli.distributed.launch import launch
from unetcli.drawing import overlay
from unetcli.ensembles.apply import apply_recipe
from unetcli.ensembles.restore import Models, Source, restore_models, sources_of
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.sweep import read_threshold_file
from unetcli.hardware import Runtime
from unetcli.inference.dataset import InferenceDataset, collate_items, test_images_of
from unetcli.inference.geometry import Geometry, restore_size
from unetcli.inference.memory import steady_memory
from unetcli.inference.options import InferenceOptions, inference_transform
from unetcli.inference.outputs import mask_images, probability_images, write_png
from unetcli.inference.pipeline import OrderedWork, predictions
from unetcli.inference.postprocess import postprocess
from unetcli.inference.submission import SubmissionWriter, image_rows, join_parts, part_path
from unetcli.limits import apply_limits
from unetcli.rle import rle_encode
from unetcli.summary import print_summary
from unetcli.task import Task
from unetcli.training.processes import SingleProcess
from unetcli.tuning.inference import agreed_inference_runtime

SUBMISSION = "submission.csv.gz"
PICTURES = ("masks", "probabilities", "overlays")  # predict.save_<name> writes <name>/


def _first_set(value: object, default: object) -> object:
    """`value` unless it is null or empty: lets predict.output_dir replace Hydra's run folder."""
    return default if value is None or value == "" else value


# Used by conf/predict.yaml's hydra.run.dir; registered before Hydra composes the config.
OmegaConf.register_new_resolver("unet_first_set", _first_set, replace=True)


def row_names(sample: Sample, task: Task) -> list[str]:
    """The submission rows of one image: its name, or `<name>_<k>` per multilabel class k."""
    return image_rows(sample.name, task)


def _input_samples(folder: str) -> list[Sample]:
    path = Path(folder)
    if not path.is_dir():
        raise UnetError(f"predict.input={folder} is not a folder; point it at a folder of images")
    images = list_images(path)
    if not images:
        raise UnetError(f"predict.input={folder} holds no image files (png, jpg, tif, bmp, gif)")
    return [Sample(p, None, p.stem, p.name) for p in images]


def _check_complete(samples: list[Sample], layout: Layout, rows: list[str]) -> None:
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


def _threshold(opts: DictConfig, sources: list[Source]) -> tuple[float, str]:
    """predict.threshold, or the best threshold an evaluate run wrote (predict.threshold_from)."""
    source = opts.threshold_from
    if not source:
        return float(opts.threshold), f"{float(opts.threshold):g}"
    found = read_threshold_file(source)
    evaluated = found.get("checkpoint")
    checkpoint = sources[0].checkpoint if len(sources) == 1 else None
    if evaluated and (checkpoint is None or Path(evaluated) != checkpoint.resolve()):
        what = f"checkpoint {checkpoint}" if checkpoint else f"ensemble of {len(sources)}"
        print(f"predict: note: {found['path']} was swept for {evaluated}, not for this {what}")
    return float(found["threshold"]), f"{found['threshold']:g} (from {found['path']})"


def _output(opts: DictConfig, run_dir: str) -> tuple[Path, Path | None]:
    """(output folder, submission path), or no path when an earlier run already completed it."""
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


class ImageFinisher:
    """Per image, on a pool thread: back to the original size, labels, RLE rows, pictures."""

    def __init__(
        self,
        samples: list[Sample],
        layout: Layout,
        options: InferenceOptions,
        output_dir: Path,
        save: dict[str, bool],
    ) -> None:
        self.samples = samples
        self.layout = layout
        self.options = options
        self.task = options.task
        self.dirs = {key: output_dir / key for key in PICTURES if save[key]}
        for folder in self.dirs.values():
            folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, index: int, geometry: tuple, probs: np.ndarray) -> list[tuple[str, str]]:
        sample = self.samples[index]
        full = restore_size(probs, Geometry.from_tuple(geometry))
        labels = postprocess(
            full,
            self.task,
            self.options.threshold,
            self.options.min_object_size,
            self.options.fill_holes,
        )
        self._pictures(sample, full, labels)
        planes = labels if self.task.multilabel else [labels]
        return [(name, rle_encode(p)) for name, p in zip(row_names(sample, self.task), planes)]

    def _pictures(self, sample: Sample, probs: np.ndarray, labels: np.ndarray) -> None:
        stem = Path(sample.name).stem
        if "masks" in self.dirs:
            for suffix, image in mask_images(labels, self.task):
                write_png(self.dirs["masks"] / f"{stem}{suffix}.png", image)
        if "probabilities" in self.dirs:
            for suffix, image in probability_images(probs, self.task):
                write_png(self.dirs["probabilities"] / f"{stem}{suffix}.png", image)
        if "overlays" in self.dirs:
            truth = self.layout.read_mask(sample.mask) if sample.mask is not None else None
            image = self.layout.read_image(sample.image)
            picture = overlay(image, labels, truth, ignore_index=self.task.ignore_index)
            write_png(self.dirs["overlays"] / f"{stem}.png", picture)


def _predict(
    models: Models,
    runtime: Runtime,
    options: InferenceOptions,
    finisher: ImageFinisher,
    writer: SubmissionWriter,
    progress: bool,
) -> int:
    """Predict the images the writer has no rows for yet; returns how many were done before."""
    samples = finisher.samples
    per_image = len(row_names(samples[0], options.task))
    done = writer.rows // per_image
    if done:
        print(
            f"predict: resuming after {writer.rows} complete rows ({done} of {len(samples)} images)"
        )
    loader_batch = 1 if options.mode == "sliding" else options.batch_size
    # Restart at a batch boundary so every batch holds the same images as in an
    # uninterrupted run (identical results); images already written are skipped.
    start = (done // loader_batch) * loader_batch
    restored = models.restored  # every member reads its images the same way (checked)
    dataset = InferenceDataset(
        restored.layout, samples[start:], inference_transform(restored.config, options.mode)
    )
    loader = make_loader(dataset, loader_batch, runtime)
    loader.collate_fn = collate_items  # lists: images of different sizes cannot be stacked
    pending = 2 * options.batch_size + 2 * options.threads
    with OrderedWork(finisher, writer.write_rows, options.threads, pending) as work:
        for item, probs in predictions(
            models.model,
            loader,
            runtime,
            options,
            desc="predict",
            progress=progress,
        ):
            index = start + int(item["index"])
            if index >= done:
                work.submit(index, item["geometry"], probs)
    return done


def _run_onnx(cfg: DictConfig) -> Path:
    """checkpoint=model.onnx: the torch-free runner (unetcli.runtime) on predict.input."""
    from unetcli.runtime.__main__ import run as run_onnx

    if not cfg.predict.input:
        raise UnetError(
            "checkpoint=model.onnx predicts a folder of images: add predict.input=DIR (the "
            "exported model carries no dataset)"
        )
    out = Path(cfg.predict.output_dir or cfg.paths.run_dir)
    print("predict: model.onnx follows its inference.json (mode, window, TTA, threshold)")
    return run_onnx(
        Path(cfg.checkpoint), Path(cfg.predict.input), out, bool(cfg.predict.save_masks)
    )


def _write_block(
    models: Models,
    runtime: Runtime,
    options: InferenceOptions,
    finisher: ImageFinisher,
    target: Path,
    opts: DictConfig,
) -> tuple[int, int]:
    """This process's rows into `target` (a part, with several); (rows written, images resumed)."""
    rows = [name for s in finisher.samples for name in row_names(s, options.task)]
    if target.exists():  # a part finished before the run was stopped: nothing left to do
        return len(rows), len(finisher.samples)
    writer = SubmissionWriter(
        target, resume=bool(opts.resume), expected=rows, rows_per_member=opts.rows_per_member
    )
    with writer:
        done = (
            _predict(models, runtime, options, finisher, writer, bool(opts.progress))
            if finisher.samples
            else 0
        )
    return writer.rows, done


def predict(cfg: DictConfig, processes: SingleProcess) -> Path:
    """The work of one process: its contiguous block of the images, in submission order.

    With several processes each writes its own resumable part and the main
    process joins them, so the file decompresses to what one process writes.
    """
    started = time.time()
    opts = cfg.predict
    output_dir, submission = _output(opts, cfg.paths.run_dir)
    if submission is None:
        return output_dir / SUBMISSION
    steady_memory()
    if not processes.is_main:
        opts.progress = False  # one progress bar: the main process's
    sources, recipe = apply_recipe(cfg, sources_of(cfg))  # the recipe sets predict.* keys
    if recipe:
        print(f"predict: {recipe}")
    runtime = agreed_inference_runtime(_tuned_on(cfg, sources[0]), "predict", processes)
    threshold, threshold_text = _threshold(opts, sources)
    with processes.main_first():  # a generated dataset is written once
        models = restore_models(cfg, sources, runtime, threshold)
    options, layout = models.options, models.restored.layout
    samples = _input_samples(opts.input) if opts.input else test_images_of(layout)
    rows = [name for s in samples for name in row_names(s, options.task)]
    if not opts.input:
        _check_complete(samples, layout, rows)
    save = {key: bool(opts[f"save_{key}"]) for key in PICTURES}
    block = processes.shard(len(samples), 1 if options.mode == "sliding" else options.batch_size)
    finisher = ImageFinisher(samples[block.start : block.stop], layout, options, output_dir, save)
    world = processes.world_size
    target = submission if world == 1 else part_path(submission, processes.rank, world)
    models_text = "" if len(sources) == 1 else f"ensemble of {len(sources)} models averaged; "
    print(
        f"predict: {len(samples)} images ({options.task.kind}, {len(rows)} rows) -> "
        f"{submission}; {models_text}{options.describe()}, threshold {threshold_text}; "
        f"{runtime.describe()}"
    )
    loop_started = time.time()
    written, done = _write_block(models, runtime, options, finisher, target, opts)
    parts = processes.gather_objects((written, done))
    if not processes.is_main:
        return submission
    if world > 1:
        join_parts([part_path(submission, r, world) for r in range(world)], submission)
    seconds, computed = time.time() - loop_started, len(samples) - sum(d for _, d in parts)
    summary = _models_summary(sources, recipe) + [
        ("submission", f"{submission} ({sum(w for w, _ in parts)} rows)"),
        ("task", f"{options.task.kind}, {options.task.num_classes} output(s)"),
        ("inference", f"{options.describe()}, threshold {threshold_text}"),
        (
            "speed",
            f"{computed / max(seconds, 1e-9):.2f} images/s ({computed} images in {seconds:.1f} s; "
            f"{time.time() - started:.1f} s with start-up{_processes_text(world)})",
        ),
    ]
    if computed < len(samples):
        summary.append(("resumed", f"after {len(samples) - computed} images written earlier"))
    summary += [(key, str(output_dir / key)) for key, on in save.items() if on]
    print_summary("unet predict: done", summary)
    return submission


def _tuned_on(cfg: DictConfig, first: Source) -> DictConfig:
    """The config the hardware tuner times: an ensemble's first member stands for all of them
    (they share one input; the tuner needs a model's shape, not its weights)."""
    if not OmegaConf.is_missing(cfg, "checkpoint") and cfg.checkpoint == str(first.checkpoint):
        return cfg
    tuned = copy.deepcopy(cfg)
    tuned.checkpoint = str(first.checkpoint)
    return tuned


def _models_summary(sources: list[Source], recipe: str | None) -> list[tuple[str, str]]:
    """The summary's first lines: the checkpoint, or the ensemble and each member."""
    lines = [("recipe", recipe)] if recipe else []
    if len(sources) == 1:
        return lines + [("checkpoint", sources[0].label)]
    lines.append(("ensemble", f"{len(sources)} models, probabilities averaged"))
    return lines + [(f"member {i}", s.label) for i, s in enumerate(sources, 1)]


def _processes_text(world: int) -> str:
    return "" if world == 1 else f", {world} processes"


def run(cfg: DictConfig) -> Path:
    """Predict in one process, or in several (hardware.devices=N, torchrun); the submission."""
    apply_limits(cfg.limits)
    check_config(cfg)
    if not OmegaConf.is_missing(cfg, "checkpoint") and str(cfg.checkpoint).endswith(".onnx"):
        return _run_onnx(cfg)
    return launch(cfg, predict)


@hydra.main(config_path=config_dir(), config_name="predict", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
