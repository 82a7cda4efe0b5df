"""`unet predict`: segment test images and write a Carvana-format gzip RLE submission."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import hydra
from omegaconf import DictConfig

from unetcli.build import make_loader
from unetcli.config_dir import config_dir
from unetcli.datasets.base import Sample
from unetcli.datasets.io import list_images
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform
from unetcli.errors import UnetError, user_errors
from unetcli.hardware import resolve_hardware
from unetcli.inference.probabilities import (
    labels_from_probabilities,
    predict_probabilities,
    to_original_size,
)
from unetcli.inference.restore import restore
from unetcli.inference.submission import SubmissionWriter
from unetcli.rle import rle_encode
from unetcli.summary import print_summary


def _input_samples(folder: str) -> list[Sample]:
    path = Path(folder)
    if not path.is_dir():
        raise UnetError(f"predict.input={folder} is not a folder; point it at a folder of images")
    images = list_images(path)
    if not images:
        raise UnetError(f"predict.input={folder} holds no image files (png, jpg, tif, bmp, gif)")
    return [Sample(p, None, p.stem, p.name) for p in images]


def run(cfg: DictConfig) -> Path:
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    opts = cfg.predict
    runtime = resolve_hardware(cfg.hardware)
    restored = restore(cfg, runtime)
    trained = restored.config
    if opts.input:
        samples = _input_samples(opts.input)
    else:
        samples = [Sample(s.image, None, s.group, s.name) for s in restored.layout.test_samples()]
    dataset = SegmentationDataset(restored.layout, samples, build_transform(trained.dataset, None))
    # Without a fixed training size the images keep their own sizes and cannot be batched.
    batch_size = int(opts.batch_size) if trained.dataset.get("image_size") else 1
    loader = make_loader(dataset, batch_size, runtime)
    masks_dir = run_dir / "masks"
    if opts.save_masks:
        masks_dir.mkdir(parents=True, exist_ok=True)
    submission = run_dir / "submission.csv.gz"
    print(f"predict: {len(samples)} images -> {submission}; {runtime.describe()}")

    from tqdm import tqdm

    with SubmissionWriter(submission) as writer:
        for batch in tqdm(loader, desc="predict", disable=not opts.progress, dynamic_ncols=True):
            probs = predict_probabilities(restored.model, batch["image"], runtime)
            for i, index in enumerate(batch["index"].tolist()):
                height, width = int(batch["height"][i]), int(batch["width"][i])
                labels = labels_from_probabilities(
                    to_original_size(probs[i], height, width), float(opts.threshold)
                )
                writer.write(samples[index].name, rle_encode(labels))
                if opts.save_masks:
                    scale = 255 if probs.shape[1] == 1 else 1
                    stem = Path(samples[index].name).stem
                    cv2.imwrite(str(masks_dir / f"{stem}.png"), labels * scale)
    seconds = time.time() - started
    rows = [
        ("checkpoint", str(cfg.checkpoint)),
        ("submission", f"{submission} ({writer.rows} rows)"),
        ("speed", f"{len(samples) / max(seconds, 1e-9):.1f} images/s ({seconds:.1f} s)"),
    ]
    if opts.save_masks:
        rows.append(("masks", str(masks_dir)))
    print_summary("unet predict: done", rows)
    return submission


@hydra.main(config_path=config_dir(), config_name="predict", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
