"""`unet evaluate`: score a checkpoint on its validation split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from unetcli.build import make_loader
from unetcli.config_dir import config_dir
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform
from unetcli.errors import UnetError, user_errors
from unetcli.hardware import resolve_hardware
from unetcli.inference.restore import restore
from unetcli.metrics import METRIC_NAMES
from unetcli.summary import metrics_table, print_summary
from unetcli.training.loop import score


def run(cfg: DictConfig) -> dict[str, float]:
    run_dir = Path(cfg.paths.run_dir)
    runtime = resolve_hardware(cfg.hardware)
    restored = restore(cfg, runtime)
    trained = restored.config
    train_samples, val_samples = restored.layout.split(
        float(trained.dataset.validation_size), int(trained.seed)
    )
    split = cfg.evaluate.split
    if split not in ("val", "train"):
        raise UnetError(f"evaluate.split must be val or train, got {split!r}")
    samples = val_samples if split == "val" else train_samples
    if not samples:
        raise UnetError(
            f"the {split} split of {restored.layout.root} is empty (dataset.validation_size="
            f"{trained.dataset.validation_size}); use evaluate.split=train"
        )
    dataset = SegmentationDataset(
        restored.layout,
        samples,
        build_transform(trained.dataset, trained.get("augmentation"), "val"),
    )
    loader = make_loader(dataset, int(cfg.evaluate.batch_size), runtime)
    result = score(
        restored.model,
        loader,
        runtime,
        int(trained.dataset.num_classes),
        threshold=float(cfg.evaluate.threshold),
        desc="evaluate",
        progress=cfg.evaluate.progress,
    )
    means = result.means()
    report = {
        "checkpoint": str(cfg.checkpoint),
        "epoch": restored.epoch,
        "split": split,
        "images": len(samples),
        "threshold": float(cfg.evaluate.threshold),
        "metrics": means,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    with (run_dir / "per_image.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", *METRIC_NAMES])
        for row, index in enumerate(result.indices):
            values = [f"{result.per_image[m][row]:.6f}" for m in METRIC_NAMES]
            writer.writerow([samples[index].name, *values])
    print(
        f"\n{split} split, {len(samples)} images, epoch {restored.epoch}:\n{metrics_table(means)}"
    )
    print_summary(
        "unet evaluate: done",
        [
            ("checkpoint", str(cfg.checkpoint)),
            ("mean dice", f"{means['dice']:.4f}"),
            ("metrics", str(run_dir / "metrics.json")),
            ("per image", str(run_dir / "per_image.csv")),
        ],
    )
    return means


@hydra.main(config_path=config_dir(), config_name="evaluate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
