"""`python -m unetcli.runner model.onnx IMAGES_DIR --out OUT_DIR` (no torch needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetcli.errors import UnetError, report
from unetcli.runner.info import read_info
from unetcli.runner.segment import ordered_images, predict_folder
from unetcli.runner.session import Graph


def run(
    model: Path, images: Path, out: Path, save_masks: bool = False, order: Path | None = None
) -> Path:
    """Segment `images` with an exported model; returns the submission's path."""
    info = read_info(model)
    graph = Graph(model)
    folder = images / info.channel_folders[0] if info.channel_folders else images
    files = ordered_images(folder, order)
    out.mkdir(parents=True, exist_ok=True)
    submission, count, seconds = predict_folder(graph, info, files, out, save_masks)
    print(
        f"unetcli.runner: {count} images -> {submission} ({count / max(seconds, 1e-9):.2f} "
        f"images/s; {info.task.kind}, mode {info.mode}, TTA {'+'.join(info.tta) or 'none'}, "
        f"threshold {info.threshold:g})"
    )
    return submission


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m unetcli.runner",
        description="Segment a folder of images with a model.onnx from `unet export`; writes "
        "OUT/submission.csv.gz (Carvana's run-length format), the same as `unet predict`.",
    )
    parser.add_argument("model", type=Path, help="model.onnx (inference.json beside it)")
    parser.add_argument("images", type=Path, help="folder of images to segment")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--save-masks", action="store_true", help="also write masks/<stem>.png")
    parser.add_argument(
        "--order",
        type=Path,
        help="CSV whose img column orders the rows (e.g. sample_submission.csv); default: by name",
    )
    args = parser.parse_args(argv)
    try:
        run(args.model, args.images, args.out, args.save_masks, args.order)
    except UnetError as err:
        report(str(err))
        sys.exit(1)


if __name__ == "__main__":
    main()
