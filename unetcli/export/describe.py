"""inference.json: what `unet predict` did with this checkpoint, for runners without the config.

Read by unetcli.runner.info; a person deploying the model reads it too, so
every entry is stated in plain units (pixels, RGB order, 0-255 colours, the stored dtype).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from omegaconf import DictConfig

from unetcli.core.drawing import class_colour
from unetcli.datasets.intensity import input_dtype, node, normalisation
from unetcli.errors import UnetError
from unetcli.evaluation.report import class_names
from unetcli.inference.options import InferenceOptions
from unetcli.models.contract import SegmentationModel
from unetcli.runner.info import FORMAT


def not_exportable(model_cfg: DictConfig, what: str) -> str:
    """The paragraph that refuses a model whose graph cannot be exported or cannot run.

    Some timm backbones trace to a graph that keeps the example's sizes (window or patch
    reshapes) or use operators the opset lacks; unet_timm names its encoder, so the user
    knows which choice to change.
    """
    encoder = model_cfg.get("encoder")
    name = str(model_cfg.get("_target_", "?")).rsplit(".", 1)[-1]
    model = f"{name} with model.encoder={encoder}" if encoder else name
    return (
        f"this checkpoint's model ({model}) cannot be exported: {what}. Its backbone does not "
        "trace to an ONNX graph that takes every image size; choose an encoder of a family "
        "that exports (docs: Encoders lists them with their opset: resnet, efficientnet, "
        "convnext, regnet, mobilenetv3), or keep using this checkpoint with `unet predict`."
    )


@contextlib.contextmanager
def refused(model_cfg: DictConfig, what: str) -> Iterator[None]:
    """A failure of the exporter or of onnxruntime (they raise many types) as one paragraph
    naming the model."""
    try:
        yield
    except UnetError:
        raise
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        why = f"{what} ({type(err).__name__}: {first})"
        raise UnetError(not_exportable(model_cfg, why)) from err


def _classes(dataset: DictConfig, options: InferenceOptions) -> list[dict]:
    task = options.task
    names = class_names(dataset, task)
    classes = []
    for index, name in enumerate(names):
        number = task.class_number(index)
        colour = [0, 0, 0] if number == 0 else list(class_colour(number))
        classes.append({"index": index, "number": number, "name": name, "colour": colour})
    return classes


def _geometry(model: SegmentationModel, tile: int | None) -> dict:
    valid = model.output_margin > 0
    return {
        "size_multiple": model.input_multiple,
        "output_margin": model.output_margin,
        "min_input_size": model.min_input_size,
        "tile_size": tile if valid else model.tile_size,
        "graph_sides": (
            f"tiles of {tile}x{tile} pixels (valid convolutions); the output is the tile minus "
            f"{model.output_margin} pixels on each side, {tile - 2 * model.output_margin}x"
            f"{tile - 2 * model.output_margin}; whole images are covered by overlap-tile with "
            "mirrored context (unetcli.runner.cover)"
            if valid
            else f"any side >= {model.input_multiple}: the graph mirror-pads the bottom and "
            f"right to a multiple of {model.input_multiple} and crops the output back"
        ),
    }


def _channel_folders(dataset: DictConfig) -> list[str] | None:
    """One folder per channel (IMAGES/<folder>/<stem>.*), or None: one file per image."""
    folders = (dataset.get("layout") or {}).get("channel_folders")
    return [str(f) for f in folders] if folders else None


def _input(dataset: DictConfig, model: SegmentationModel) -> dict:
    """The graph's input: the pixels as stored, and the normalisation the graph applies."""
    dtype = input_dtype(dataset)
    norm = normalisation(dataset)
    channels = model.in_channels
    stretch = norm.stretches(dtype)
    offset, factor = norm.constants(stretch)
    steps = ["x = float32(pixels)"]
    if stretch:
        steps.append("x = (x - min(x)) / (max(x) - min(x)) over each whole image")
    if norm.low is not None:
        steps.append("x = clip(x, low, high) per channel")
    steps.append("input = (x - offset) * factor per channel")
    return {
        "name": "pixels",
        "layout": "NHWC",
        "dtype": dtype,
        "channels": channels,
        "colour_order": "RGB" if channels == 3 else "grey" if channels == 1 else "as stored",
        "bit_depth": {"uint8": 8, "uint16": 16, "float32": 32}.get(dtype, 8),
        "channel_folders": _channel_folders(dataset),
        "reading": "values as the file stores them (unetcli.core.images.read_image): TIFFs "
        "with every plane as a channel, no stretching before the graph",
        "normalisation_in_graph": {
            "mode": norm.mode,
            "steps": steps,
            "low": list(norm.low) if norm.low is not None else None,
            "high": list(norm.high) if norm.high is not None else None,
            "offset": [float(v) for v in offset],
            "factor": [float(v) for v in factor],
            "mean": list(dataset.mean),
            "std": list(dataset.std),
            "intensity": node(dataset),
        },
    }


def inference_info(
    trained: DictConfig, model: SegmentationModel, options: InferenceOptions, tile: int | None
) -> dict:
    """The inference.json document for a restored checkpoint and the export's predict options."""
    dataset = trained.dataset
    task = options.task
    size = dataset.get("image_size")
    return {
        "format": FORMAT,
        "model": "model.onnx",
        "input": _input(dataset, model),
        "output": {
            "name": "probabilities",
            "layout": "NCHW",
            "activation": "softmax" if task.kind == "multiclass" else "sigmoid",
        },
        "geometry": _geometry(model, tile),
        "training": {
            "image_size": [int(v) for v in size] if size else None,
            "crop_size": dataset.get("crop_size"),
        },
        "predict": {
            "mode": options.mode,
            "window": list(options.window) if options.window else None,
            "overlap": options.overlap,
            "tta": list(options.tta),
            "threshold": options.threshold,
            "min_object_size": options.min_object_size,
            "fill_holes": options.fill_holes,
            "resize_back": "bilinear (cv2.INTER_LINEAR) to the original size, then threshold",
        },
        "task": {
            "kind": task.kind,
            "num_classes": task.num_classes,
            "ignore_index": task.ignore_index,
            "classes": _classes(dataset, options),
        },
        "submission": {
            "header": "img,rle_mask",
            "rows": "one per image (multilabel: <file>_<k> per class k = 1..C)",
            "rle": "1-indexed start length pairs, row-major, at the original size",
        },
    }
