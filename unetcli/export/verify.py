"""Does model.onnx, run by the torch-free runner, give what `unet predict` gives?

Each check runs one image through both pipelines: predict's (the `Predictor`:
albumentations transform, `cover` with torch, TTA, back to the original size) and the
runner's (OpenCV resize, the ONNX graph under onnxruntime, NumPy cover and
TTA, back). It records the largest probability difference and the Dice of
the two label maps (threshold or argmax); export fails unless every check is
below the tolerance and at or above the Dice. Validation images are checked
as predict would see them; crops at sizes that are not multiples of the
model's step check the graph's own padding (mode full, or the overlap tiles
of valid-convolution models).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from unetcli.errors import UnetError
from unetcli.export.describe import refused
from unetcli.inference.predictor import Predictor
from unetcli.runner.info import InferenceInfo
from unetcli.runner.segment import image_probabilities
from unetcli.runner.session import Graph


@dataclass(frozen=True)
class Check:
    name: str
    size: tuple[int, int]
    max_difference: float
    dice: float


def label_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two label maps (or planes) over their foreground; 1 when both are empty."""
    inter = np.count_nonzero((a == b) & (a > 0))
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2.0 * inter / total


def odd_crop(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The image at (height, width): a crop where it is larger, resized up where not."""
    height, width = int(size[0]), int(size[1])
    if image.shape[0] < height or image.shape[1] < width:
        image = cv2.resize(image, (max(width, image.shape[1]), max(height, image.shape[0])))
        image = image if image.ndim == 3 else image[..., None]
    return np.ascontiguousarray(image[:height, :width])


def _check(
    name: str, image: np.ndarray, predictor: Predictor, graph: Graph, info: InferenceInfo
) -> Check:
    options = predictor.options
    expected = predictor.image_probabilities(image)
    # onnxruntime's own error types: the graph cannot take this size.
    with refused(
        predictor.first.config.model, f"onnxruntime cannot run the exported graph on {name}"
    ):
        got = image_probabilities(graph, info, image)
    task = options.task
    dice = label_dice(
        task.labels_np(expected, options.threshold), task.labels_np(got, options.threshold)
    )
    return Check(name, image.shape[:2], float(np.abs(expected - got).max()), dice)


def verify(
    predictor: Predictor,
    graph: Graph,
    info: InferenceInfo,
    images: Sequence[tuple[str, np.ndarray]],
    odd_sizes: Sequence[Sequence[int]],
) -> list[Check]:
    """One check per validation image (as exported) and per odd size (graph padding).

    The torch side is predict's own path (`Predictor.image_probabilities`): the same
    transform, cover mode, TTA and resize back as the inference engine.
    """
    checks = [_check(n, img, predictor, graph, info) for n, img in images]
    mode = "full" if predictor.options.mode == "resize" else predictor.options.mode
    odd_predictor = predictor.with_options(mode=mode, tta=())
    odd_info = dataclasses.replace(info, mode=mode, tta=())
    source = images[0][1]
    for size in odd_sizes:
        crop = odd_crop(source, size)
        name = f"{images[0][0]} at {size[0]}x{size[1]} ({mode})"
        checks.append(_check(name, crop, odd_predictor, graph, odd_info))
    return checks


def require_agreement(checks: Sequence[Check], tolerance: float, min_dice: float) -> None:
    """Raise one paragraph naming the worst check unless all agree."""
    bad = [c for c in checks if not (c.max_difference < tolerance and c.dice >= min_dice)]
    if bad:
        worst = max(bad, key=lambda c: c.max_difference)
        raise UnetError(
            f"the exported model.onnx disagrees with the checkpoint on {len(bad)} of "
            f"{len(checks)} checks, e.g. {worst.name} ({worst.size[0]}x{worst.size[1]}): largest "
            f"probability difference {worst.max_difference:.2e} (export.tolerance={tolerance:g}), "
            f"Dice {worst.dice:.5f} (export.min_dice={min_dice:g}). The export cannot be trusted; "
            "report it with the checkpoint, or loosen export.tolerance if the difference is "
            "rounding only."
        )
