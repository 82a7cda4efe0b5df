"""`unet export`: write model.onnx, model.pt2, inference.json and export.json, verified.

The pieces: unetcli.export.graph (what is traced), unetcli.export.describe
(inference.json), unetcli.export.verify (onnxruntime beside torch); the
torch-free runner that reads the result is unetcli.runtime.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from unetcli.config_dir import config_dir
from unetcli.datasets.folds import dataset_split
from unetcli.errors import UnetError, user_errors
from unetcli.evaluation.sweep import read_threshold_file
from unetcli.export.describe import inference_info
from unetcli.export.graph import (
    PixelModel,
    example_size,
    export_onnx,
    export_pt2,
    export_torchscript,
)
from unetcli.export.verify import Check, TorchSide, require_agreement, verify
from unetcli.hardware import resolve_hardware
from unetcli.inference.options import InferenceOptions, inference_options
from unetcli.inference.restore import Restored, restore
from unetcli.runtime.info import INFO_NAME, InferenceInfo
from unetcli.runtime.session import Graph
from unetcli.summary import print_summary
from unetcli.tiling import tile_grid

PROGRAMS = {
    "pt2": ("model.pt2", export_pt2),
    "torchscript": ("model.ts", export_torchscript),
    "none": (None, None),
}


def _write_atomic(path: Path, write) -> None:
    """Call write(tmp) and rename tmp to path: an interrupted export leaves no half file."""
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    write(tmp)
    os.replace(tmp, path)


def _check_transform(trained: DictConfig) -> None:
    """The runner reproduces resize + normalise; refuse what it cannot reproduce."""
    extra = (trained.get("augmentation") or {}).get("val") or []
    if extra:
        names = [str(step.get("_target_", step)).rsplit(".", 1)[-1] for step in extra]
        raise UnetError(
            f"the checkpoint's augmentation has val steps {names}; the exported runner "
            "reproduces only the resize and normalisation of prediction. Train with an "
            "augmentation whose val list is empty (e.g. augmentation=flips) to export."
        )


def _options(cfg: DictConfig, trained: DictConfig) -> InferenceOptions:
    threshold = None
    if cfg.export.threshold_from:
        threshold = float(read_threshold_file(cfg.export.threshold_from)["threshold"])
    return inference_options(cfg.export, "export", trained, threshold)


def _validation_images(restored: Restored, count: int) -> list[tuple[str, np.ndarray]]:
    trained = restored.config
    _, val = dataset_split(restored.layout, trained.dataset, int(trained.seed))
    samples = (val or restored.layout.labelled_samples())[: max(1, count)]
    return [(s.name, restored.layout.read_image(s.image)) for s in samples]


def _verify(cfg, restored, runtime, options, model_path) -> list[Check]:
    info = InferenceInfo.from_dict(json.loads(model_path.with_name(INFO_NAME).read_text()))
    side = TorchSide(restored.model, restored.config, runtime)
    images = _validation_images(restored, int(cfg.export.verify_images))
    sizes = [list(s) for s in cfg.export.verify_sizes]
    checks = verify(side, Graph(model_path), info, options, images, sizes)
    return checks


def _program_size(
    trained: DictConfig, options: InferenceOptions, tile: int | None
) -> tuple[int, int] | None:
    """The fixed sides of model.pt2: what the network sees in the exported mode."""
    if tile is not None:
        return tile, tile
    if options.mode == "sliding":
        return tuple(options.window)
    if options.mode == "resize":
        return tuple(int(v) for v in trained.dataset.image_size)
    return None


def _write_files(cfg, restored, options, out: Path) -> dict:
    """model.onnx, the torch program and inference.json; returns what export.json records."""
    trained = restored.config
    pixel_model = PixelModel(
        restored.model, trained.dataset.mean, trained.dataset.std, options.task
    ).eval()
    fmt = str(cfg.export.format)
    if fmt not in PROGRAMS:
        raise UnetError(f"export.format must be one of {', '.join(PROGRAMS)}, got {fmt!r}")
    tile = None
    if restored.model.output_margin > 0:
        tile = tile_grid(restored.model, max(options.window) if options.window else None).tile
    onnx_path = out / "model.onnx"
    _write_atomic(onnx_path, lambda p: export_onnx(pixel_model, p, int(cfg.export.opset), tile))
    name, writer = PROGRAMS[fmt]
    sides: list = []
    if writer is not None:
        size = _program_size(trained, options, tile) or example_size(restored.model, None)
        _write_atomic(out / name, lambda p: sides.extend(writer(pixel_model, p, size)))
    info = inference_info(trained, restored.model, options, tile)
    text = json.dumps(info, indent=2) + "\n"
    _write_atomic(out / INFO_NAME, lambda p: p.write_text(text))
    program = str(out / name) if name else None
    return {"onnx": str(onnx_path), "program": program, "program_sides": sides}


def run(cfg: DictConfig) -> dict:
    started = time.time()
    out = Path(cfg.paths.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    runtime = resolve_hardware(cfg.hardware)
    restored = restore(cfg, runtime)
    _check_transform(restored.config)
    options = _options(cfg, restored.config)
    files = _write_files(cfg, restored, options, out)
    checks: list[Check] = []
    if cfg.export.verify:
        checks = _verify(cfg, restored, runtime, options, Path(files["onnx"]))
    import onnxruntime

    report = {
        "checkpoint": str(cfg.checkpoint),
        **files,
        "opset": int(cfg.export.opset),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "tolerance": float(cfg.export.tolerance),
        "min_dice": float(cfg.export.min_dice),
        "checks": [c.__dict__ | {"size": list(c.size)} for c in checks],
        "max_difference": max((c.max_difference for c in checks), default=None),
        "min_check_dice": min((c.dice for c in checks), default=None),
        "seconds": round(time.time() - started, 1),
    }
    text = json.dumps(report, indent=2) + "\n"
    _write_atomic(out / "export.json", lambda p: p.write_text(text))
    if checks:
        require_agreement(checks, report["tolerance"], report["min_dice"])
    _summary(report, out, options)
    return report


def _summary(report: dict, out: Path, options: InferenceOptions) -> None:
    checks = report["checks"]
    verified = (
        f"{len(checks)} checks: largest probability difference {report['max_difference']:.2e} "
        f"(< {report['tolerance']:g}), lowest mask Dice {report['min_check_dice']:.5f}"
        if checks
        else "not verified (export.verify=false)"
    )
    print_summary(
        "unet export: done",
        [
            ("checkpoint", report["checkpoint"]),
            ("onnx", report["onnx"]),
            ("program", report["program"] or "none (export.format=none)"),
            ("inference", f"{out / INFO_NAME} ({options.describe()})"),
            ("verified", verified),
            ("run it", f"python -m unetcli.runtime {report['onnx']} IMAGES_DIR --out OUT_DIR"),
        ],
    )


@hydra.main(config_path=config_dir(), config_name="export", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
