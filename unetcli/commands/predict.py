"""`unet predict`: segment test images and write a Carvana-format gzip RLE submission."""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from unetcli.build import make_loader
from unetcli.config_dir import config_dir
from unetcli.datasets.base import Layout, Sample
from unetcli.datasets.io import list_images
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.sweep import read_threshold_file
from unetcli.hardware import resolve_hardware
from unetcli.inference.dataset import InferenceDataset, collate_items, test_images_of
from unetcli.inference.geometry import Geometry, restore_size
from unetcli.inference.memory import steady_memory
from unetcli.inference.options import InferenceOptions, inference_options, inference_transform
from unetcli.inference.outputs import mask_image, overlay, probability_images, write_png
from unetcli.inference.pipeline import OrderedWork, predictions
from unetcli.inference.postprocess import postprocess
from unetcli.inference.restore import restore
from unetcli.inference.submission import SubmissionWriter
from unetcli.rle import rle_encode
from unetcli.summary import print_summary

SUBMISSION = "submission.csv.gz"


def _first_set(value: object, default: object) -> object:
    """`value` unless it is null or empty: lets predict.output_dir replace Hydra's run folder."""
    return default if value is None or value == "" else value


# Used by conf/predict.yaml's hydra.run.dir; registered before Hydra composes the config.
OmegaConf.register_new_resolver("unet_first_set", _first_set, replace=True)


def _input_samples(folder: str) -> list[Sample]:
    path = Path(folder)
    if not path.is_dir():
        raise UnetError(f"predict.input={folder} is not a folder; point it at a folder of images")
    images = list_images(path)
    if not images:
        raise UnetError(f"predict.input={folder} holds no image files (png, jpg, tif, bmp, gif)")
    return [Sample(p, None, p.stem, p.name) for p in images]


def _check_complete(samples: list[Sample], layout: Layout) -> None:
    """Every test image exactly once; and every image sample_submission.csv lists, if any."""
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
    missing = sorted(set(listed) - set(names))
    if missing:
        raise UnetError(
            f"{sample_csv} lists {len(missing)} image(s) that are not in the test folder, e.g. "
            f"{', '.join(missing[:5])}; the submission would be incomplete. Complete the test "
            "folder (e.g. `unet download` again) or predict a folder with predict.input=DIR."
        )


def _threshold(opts: DictConfig, checkpoint: str) -> tuple[float, str]:
    """predict.threshold, or the best threshold an evaluate run wrote (predict.threshold_from)."""
    source = opts.get("threshold_from")
    if not source:
        return float(opts.threshold), f"{float(opts.threshold):g}"
    found = read_threshold_file(source)
    evaluated = found.get("checkpoint")
    if evaluated and Path(evaluated) != Path(checkpoint).resolve():
        print(
            f"predict: note: {found['path']} was swept for {evaluated}, not for this "
            f"checkpoint {checkpoint}"
        )
    return float(found["threshold"]), f"{found['threshold']:g} (from {found['path']})"


class ImageFinisher:
    """Per image, on a pool thread: back to the original size, labels, RLE, optional pictures."""

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
        self.dirs = {}
        for key, folder in (
            ("masks", "masks"),
            ("probabilities", "probabilities"),
            ("overlays", "overlays"),
        ):
            if save[key]:
                self.dirs[key] = output_dir / folder
                self.dirs[key].mkdir(parents=True, exist_ok=True)

    def __call__(self, index: int, geometry: tuple, probs: np.ndarray) -> tuple[str, str]:
        sample = self.samples[index]
        full = restore_size(probs, Geometry.from_tuple(geometry))
        labels = postprocess(full, self.options.threshold, self.options.min_object_size)
        stem = Path(sample.name).stem
        if "masks" in self.dirs:
            write_png(self.dirs["masks"] / f"{stem}.png", mask_image(labels, full.shape[0]))
        if "probabilities" in self.dirs:
            for suffix, image in probability_images(full):
                write_png(self.dirs["probabilities"] / f"{stem}{suffix}.png", image)
        if "overlays" in self.dirs:
            truth = self.layout.read_mask(sample.mask) if sample.mask is not None else None
            picture = overlay(self.layout.read_image(sample.image), labels, truth)
            write_png(self.dirs["overlays"] / f"{stem}.png", picture)
        return sample.name, rle_encode(labels)


def run(cfg: DictConfig) -> Path:
    started = time.time()
    opts = cfg.predict
    output_dir = Path(opts.output_dir) if opts.get("output_dir") else Path(cfg.paths.run_dir)
    resume = bool(opts.get("resume", False))
    submission = output_dir / SUBMISSION
    partial = submission.with_name(submission.name + ".tmp")
    if submission.exists():
        if resume:
            print(f"predict: {submission} is already complete; nothing to resume")
            return submission
        raise UnetError(
            f"{submission} already exists; unetcli does not overwrite it. Choose another "
            "predict.output_dir (or leave it unset for a new run folder)."
        )
    if partial.exists() and not resume:
        raise UnetError(
            f"{output_dir} holds an interrupted submission ({partial.name}). Add "
            "predict.resume=true to continue it, or choose another predict.output_dir."
        )
    if resume and not opts.get("output_dir"):
        raise UnetError(
            "predict.resume=true continues the submission in an earlier run's folder: name it "
            "with predict.output_dir=outputs/predict/<run>"
        )

    steady_memory()
    runtime = resolve_hardware(cfg.hardware)
    restored = restore(cfg, runtime)
    trained = restored.config
    threshold, threshold_text = _threshold(opts, str(cfg.checkpoint))
    options = inference_options(opts, "predict", trained, threshold)
    if opts.input:
        samples = _input_samples(opts.input)
    else:
        samples = test_images_of(restored.layout)
        _check_complete(samples, restored.layout)
    save = {
        "masks": bool(opts.save_masks),
        "probabilities": bool(opts.get("save_probabilities", False)),
        "overlays": bool(opts.get("save_overlays", False)),
    }
    num_classes = int(trained.dataset.num_classes)

    expected = [s.name for s in samples]
    writer = SubmissionWriter(
        submission,
        resume=resume,
        expected=expected,
        rows_per_member=int(opts.get("rows_per_member", 256)),
    )
    finisher = ImageFinisher(samples, restored.layout, options, output_dir, save)
    print(
        f"predict: {len(samples)} images -> {submission}; {options.describe()}, threshold "
        f"{threshold_text}; {runtime.describe()}"
    )
    loader_batch = 1 if options.mode == "sliding" else options.batch_size
    with writer:
        done = writer.rows
        if resume:
            print(f"predict: resuming after {done} complete rows of {len(samples)}")
        # Restart at a batch boundary so every batch holds the same images as in an
        # uninterrupted run (identical results); rows already written are skipped.
        start = (done // loader_batch) * loader_batch
        dataset = InferenceDataset(
            restored.layout, samples[start:], inference_transform(trained, options.mode)
        )
        loader = make_loader(dataset, loader_batch, runtime)
        loader.collate_fn = collate_items  # lists: images of different sizes cannot be stacked
        pending = 2 * options.batch_size + 2 * options.threads
        loop_started = time.time()
        with OrderedWork(
            finisher, lambda row: writer.write(*row), options.threads, pending
        ) as work:
            for item, probs in predictions(
                restored.model,
                loader,
                runtime,
                options,
                desc="predict",
                progress=bool(opts.progress),
                total=len(dataset),
            ):
                index = start + int(item["index"])
                if index >= done:
                    work.submit(index, item["geometry"], probs)
    seconds = time.time() - loop_started
    computed = len(samples) - done
    rows = [
        ("checkpoint", str(cfg.checkpoint)),
        ("submission", f"{submission} ({writer.rows} rows)"),
        ("classes", f"{num_classes} ({'binary' if num_classes == 1 else 'argmax'})"),
        ("inference", f"{options.describe()}, threshold {threshold_text}"),
        (
            "speed",
            f"{computed / max(seconds, 1e-9):.2f} images/s ({computed} images in {seconds:.1f} s; "
            f"{time.time() - started:.1f} s with start-up)",
        ),
    ]
    if done:
        rows.append(("resumed", f"after {done} rows written earlier"))
    for key, on in save.items():
        if on:
            rows.append((key, str(output_dir / key)))
    print_summary("unet predict: done", rows)
    return submission


@hydra.main(config_path=config_dir(), config_name="predict", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
