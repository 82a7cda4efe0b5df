"""The files `unet export` writes: model.onnx, the torch program, inference.json.

Each is written under a temporary name and renamed, so an interrupted export leaves no
half file. What the runner cannot reproduce (transform steps beyond resize and
normalisation) is refused before anything is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from unetcli.core.tiling import tile_grid
from unetcli.datasets.intensity import input_dtype, normalisation
from unetcli.errors import UnetError
from unetcli.export.describe import inference_info, refused
from unetcli.export.graph import (
    PixelModel,
    example_size,
    export_onnx,
    export_pt2,
    export_torchscript,
)
from unetcli.inference.predictor import Predictor
from unetcli.runner.info import INFO_NAME

PROGRAMS = {
    "pt2": ("model.pt2", export_pt2),
    "torchscript": ("model.ts", export_torchscript),
    "none": (None, None),
}


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp) and rename tmp to path: an interrupted export leaves no half file."""
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    write(tmp)
    os.replace(tmp, path)


def check_exportable(trained: DictConfig) -> None:
    """The runner reproduces resize + normalise; refuse what it cannot reproduce."""
    extra = (trained.get("augmentation") or {}).get("val") or []
    if extra:
        names = [str(step.get("_target_", step)).rsplit(".", 1)[-1] for step in extra]
        raise UnetError(
            f"the checkpoint's augmentation has val steps {names}; the exported runner "
            "reproduces only the resize and normalisation of prediction. Train with an "
            "augmentation whose val list is empty (e.g. augmentation=flips) to export."
        )


def _program_size(predictor: Predictor, tile: int | None) -> tuple[int, int] | None:
    """The fixed sides of model.pt2: what the network sees in the exported mode."""
    options = predictor.options
    if tile is not None:
        return tile, tile
    if options.mode == "sliding":
        return tuple(options.window)
    if options.mode == "resize":
        return tuple(int(v) for v in predictor.first.config.dataset.image_size)
    return None


def write_files(predictor: Predictor, node: DictConfig, out: Path) -> dict:
    """model.onnx, the torch program and inference.json; what export.json records of them."""
    restored, options = predictor.first, predictor.options
    dataset = restored.config.dataset
    pixel_model = PixelModel(
        restored.model, normalisation(dataset), options.task, input_dtype(dataset)
    ).eval()
    fmt = str(node.format)
    if fmt not in PROGRAMS:
        raise UnetError(f"export.format must be one of {', '.join(PROGRAMS)}, got {fmt!r}")
    tile = None
    if restored.model.output_margin > 0:
        tile = tile_grid(restored.model, max(options.window) if options.window else None).tile
    onnx_path = out / "model.onnx"
    model_cfg = restored.config.model
    opset = int(node.opset)
    with refused(model_cfg, f"torch.onnx cannot write it at opset {opset}"):
        write_atomic(onnx_path, lambda p: export_onnx(pixel_model, p, opset, tile))
    name, writer = PROGRAMS[fmt]
    sides: list = []
    if writer is not None:
        size = _program_size(predictor, tile) or example_size(restored.model, None)
        with refused(model_cfg, f"{fmt} cannot capture it (export.format=none skips it)"):
            write_atomic(out / name, lambda p: sides.extend(writer(pixel_model, p, size)))
    text = json.dumps(inference_info(restored.config, restored.model, options, tile), indent=2)
    write_atomic(out / INFO_NAME, lambda p: p.write_text(text + "\n"))
    program = str(out / name) if name else None
    return {"onnx": str(onnx_path), "program": program, "program_sides": sides}
