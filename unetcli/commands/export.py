"""`unet export`: write model.onnx, model.pt2, inference.json and export.json, verified.

The pieces: unetcli.export.artifacts (what is written), unetcli.export.graph (what is
traced), unetcli.export.describe (inference.json), unetcli.export.verify (onnxruntime
beside predict's own path); the torch-free runner that reads the result is unetcli.runner.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.core.console import print_summary
from unetcli.core.hardware import resolve_hardware
from unetcli.datasets.folds import dataset_split
from unetcli.errors import user_errors
from unetcli.export.artifacts import check_exportable, write_atomic, write_files
from unetcli.export.verify import Check, require_agreement, verify
from unetcli.inference.predictor import Predictor, load_predictor, sources_of
from unetcli.runner.info import INFO_NAME, InferenceInfo
from unetcli.runner.session import Graph


def _validation_images(predictor: Predictor, count: int) -> list[tuple[str, np.ndarray]]:
    restored = predictor.first
    _, val = dataset_split(restored.layout, restored.config.dataset, int(restored.config.seed))
    samples = (val or restored.layout.labelled_samples())[: max(1, count)]
    return [(s.name, restored.layout.read_image(s.image)) for s in samples]


def _verify(cfg: DictConfig, predictor: Predictor, model_path: Path) -> list[Check]:
    info = InferenceInfo.from_dict(json.loads(model_path.with_name(INFO_NAME).read_text()))
    images = _validation_images(predictor, int(cfg.export.verify_images))
    sizes = [list(s) for s in cfg.export.verify_sizes]
    return verify(predictor, Graph(model_path), info, images, sizes)


def run(cfg: DictConfig) -> dict:
    started = time.time()
    out = Path(cfg.paths.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictor = load_predictor(sources_of(cfg), cfg, "export", resolve_hardware(cfg.hardware))
    check_exportable(predictor.first.config)
    files = write_files(predictor, cfg.export, out)
    checks = _verify(cfg, predictor, Path(files["onnx"])) if cfg.export.verify else []
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
    write_atomic(out / "export.json", lambda p: p.write_text(text))
    if checks:
        require_agreement(checks, report["tolerance"], report["min_dice"])
    _summary(report, out, predictor)
    return report


def _summary(report: dict, out: Path, predictor: Predictor) -> None:
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
            ("inference", f"{out / INFO_NAME} ({predictor.options.describe()})"),
            ("verified", verified),
            ("run it", f"python -m unetcli.runner {report['onnx']} IMAGES_DIR --out OUT_DIR"),
        ],
    )


@hydra.main(config_path=config_dir(), config_name="export", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
