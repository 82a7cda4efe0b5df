"""Does model.onnx, run by the torch-free runner, give what `unet predict` gives?

Each check runs one image through both pipelines: predict's (albumentations
transform, `cover` with torch, TTA, back to the original size) and the
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
import torch
from omegaconf import DictConfig

from unetcli.errors import UnetError
from unetcli.hardware import Runtime
from unetcli.inference.geometry import geometry_of, restore_size, tracked
from unetcli.inference.modes import cover
from unetcli.inference.options import InferenceOptions, inference_transform
from unetcli.inference.tta import with_tta
from unetcli.models.contract import SegmentationModel
from unetcli.runtime.info import InferenceInfo
from unetcli.runtime.predict import image_probabilities
from unetcli.runtime.session import Graph


@dataclass(frozen=True)
class Check:
    name: str
    size: tuple[int, int]
    max_difference: float
    dice: float


@dataclass(frozen=True)
class TorchSide:
    """predict's pipeline for one image, in-process."""

    model: SegmentationModel
    trained: DictConfig
    runtime: Runtime

    @torch.no_grad()
    def __call__(self, image: np.ndarray, options: InferenceOptions) -> np.ndarray:
        transform = tracked(inference_transform(self.trained, options.mode))
        out = transform(image=image)
        geometry = geometry_of(
            out["applied_transforms"], image.shape[:2], out["image"].shape[:2], transform
        )
        x = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))[None]
        predict = with_tta(lambda b: cover(self.model, b, self.runtime, options), options.tta)
        return restore_size(predict(x)[0].float().cpu().numpy(), geometry)


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


def _check(name, image, torch_side, graph, info, options) -> Check:
    expected = torch_side(image, options)
    got = image_probabilities(graph, info, image)
    task = options.task
    dice = label_dice(
        task.labels_np(expected, options.threshold), task.labels_np(got, options.threshold)
    )
    return Check(name, image.shape[:2], float(np.abs(expected - got).max()), dice)


def verify(
    torch_side: TorchSide,
    graph: Graph,
    info: InferenceInfo,
    options: InferenceOptions,
    images: Sequence[tuple[str, np.ndarray]],
    odd_sizes: Sequence[Sequence[int]],
) -> list[Check]:
    """One check per validation image (as exported) and per odd size (graph padding)."""
    checks = [_check(n, img, torch_side, graph, info, options) for n, img in images]
    mode = "full" if options.mode == "resize" else options.mode
    odd_options = dataclasses.replace(options, mode=mode, tta=())
    odd_info = dataclasses.replace(info, mode=mode, tta=())
    source = images[0][1]
    for size in odd_sizes:
        crop = odd_crop(source, size)
        name = f"{images[0][0]} at {size[0]}x{size[1]} ({mode})"
        checks.append(_check(name, crop, torch_side, graph, odd_info, odd_options))
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
