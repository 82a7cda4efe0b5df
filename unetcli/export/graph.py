"""The network as it is exported: raw pixels in, probabilities out.

The checkpoint's model alone expects normalised float input and gives
logits; a deployed model that left normalisation and the activation to each
caller would be used wrongly sooner or later. `PixelModel` puts both inside
the graph: it takes the pixels as an image file holds them, (N, H, W, C)
uint8, and returns the task's probabilities (N, C, H', W') in float32.

Shapes: model.onnx takes any batch, height and width. It is traced by
torch.onnx's TorchScript-based exporter, which records the arithmetic on
sizes (pad to the next multiple of 16, crop back) as graph operations;
torch.export (the dynamo exporter) cannot prove those floor divisions for
every symbolic size and fixes the sides. A trace can still bake in a branch
taken at the example size, so `unet export` verifies the graph with
onnxruntime at sizes other than the example (unetcli.export.verify).
Valid-convolution models (output_margin > 0) take square tiles of the one
side the runner's overlap-tile grid uses (their skip crops trace as
constants) and give the tile minus the margin on each side; inference.json
states both.
model.pt2 (torch.export) has a dynamic batch and fixed sides: the size the
network sees in the exported mode (training size, sliding window or tile).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from unetcli.core.task import Task
from unetcli.models.contract import SegmentationModel

PIXELS = "pixels"
PROBABILITIES = "probabilities"


class PixelModel(nn.Module):
    """uint8 pixels (N, H, W, C) -> probabilities (N, C, H', W'), normalised as in training.

    The normalisation is albumentations' Normalize (max_pixel_value 255):
    (x - mean * 255) * (1 / (std * 255)), the same float32 constants.
    """

    def __init__(
        self, model: SegmentationModel, mean: Sequence[float], std: Sequence[float], task: Task
    ) -> None:
        super().__init__()
        self.model = model
        self.task = task
        shape = (1, len(mean), 1, 1)
        offset = torch.tensor([m * 255.0 for m in mean], dtype=torch.float64)
        factor = 1.0 / torch.tensor([s * 255.0 for s in std], dtype=torch.float64)
        self.register_buffer("offset", offset.float().view(shape), persistent=False)
        self.register_buffer("factor", factor.float().view(shape), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.permute(0, 3, 1, 2).float() - self.offset) * self.factor
        return self.task.probabilities(self.model(x))


def example_size(model: SegmentationModel, tile: int | None) -> tuple[int, int]:
    """A (height, width) to trace at: not a multiple of the model's step in either side
    (so the padding is traced), or the tile of a valid-convolution model."""
    if model.output_margin > 0:
        return tile, tile
    step = model.input_multiple
    return 2 * step + max(1, step // 4), 3 * step + max(1, step // 2)


def example_pixels(
    model: SegmentationModel, tile: int | None, batch: int = 2, size: tuple | None = None
) -> torch.Tensor:
    """A random uint8 batch (N, H, W, C) of `size`, by default `example_size`."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, *(size or example_size(model, tile)), model.in_channels)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


def export_onnx(pixel_model: PixelModel, path: Path, opset: int, tile: int | None) -> None:
    """Write the ONNX graph: dynamic batch, height and width (valid-convolution models: dynamic
    batch of fixed `tile` x `tile` tiles; their crops are traced as constants)."""
    model = pixel_model.model
    example = example_pixels(model, tile)
    spatial = {} if model.output_margin > 0 else {1: "height", 2: "width"}
    spatial_out = {} if model.output_margin > 0 else {2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The tracer warns at every size it reads; verification checks other sizes instead.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            pixel_model.eval(),
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[PIXELS],
            output_names=[PROBABILITIES],
            dynamic_axes={
                PIXELS: {0: "batch", **spatial},
                PROBABILITIES: {0: "batch", **spatial_out},
            },
        )


def export_pt2(pixel_model: PixelModel, path: Path, size: tuple[int, int]) -> tuple[int, int]:
    """torch.export the pixel model (dynamic batch, fixed `size`) to `path`; returns the size."""
    example = example_pixels(pixel_model.model, None, size=size)
    program = torch.export.export(
        pixel_model.eval(),
        (example,),
        dynamic_shapes={"pixels": {0: torch.export.Dim("batch", min=1)}},
    )
    torch.export.save(program, str(path))
    return tuple(example.shape[1:3])


def export_torchscript(
    pixel_model: PixelModel, path: Path, size: tuple[int, int]
) -> tuple[int, int]:
    """TorchScript (deprecated by PyTorch; only on request): traced at `size`."""
    example = example_pixels(pixel_model.model, None, size=size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(pixel_model.eval(), (example,))
    traced.save(str(path))
    return tuple(example.shape[1:3])
