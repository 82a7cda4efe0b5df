"""The network as it is exported: raw pixels in, probabilities out.

The checkpoint's model alone expects normalised float input and gives
logits; a deployed model that left normalisation and the activation to each
caller would be used wrongly sooner or later. `PixelModel` puts both inside
the graph: it takes the pixels as an image file holds them, (N, H, W, C)
uint8, uint16 or float32 (the dtype training read), and returns the task's
probabilities (N, C, H', W') in float32.

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
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unetcli.core.normalisation import Normalisation
from unetcli.core.task import Task
from unetcli.models.contract import SegmentationModel

PIXELS = "pixels"
PROBABILITIES = "probabilities"


class PixelModel(nn.Module):
    """Stored pixels (N, H, W, C) -> probabilities (N, C, H', W'), normalised as in training.

    The pixels come in the dtype the training images were read as (uint8, uint16 or float32)
    and the normalisation is unetcli.core.normalisation's, the same float32 arithmetic in torch:
    [per-image stretch], clip to [low, high], (x - offset) * factor.
    """

    def __init__(
        self,
        model: SegmentationModel,
        normalisation: Normalisation,
        task: Task,
        dtype: str = "uint8",
    ) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.dtype = dtype
        self.stretch = normalisation.stretches(dtype)
        self.clip = normalisation.low is not None
        offset, factor = normalisation.constants(self.stretch)
        shape = (1, len(offset), 1, 1)
        buffers = {"offset": offset, "factor": factor}
        if self.clip:
            buffers.update(low=normalisation.low, high=normalisation.high)
        for name, values in buffers.items():
            tensor = torch.tensor(np.asarray(values, np.float32)).view(shape)
            self.register_buffer(name, tensor, persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Cast first: the graph's input then feeds one Cast, whatever its dtype (see export_onnx).
        x = pixels.float().permute(0, 3, 1, 2)
        if self.stretch:
            low = x.amin(dim=(1, 2, 3), keepdim=True)
            high = x.amax(dim=(1, 2, 3), keepdim=True)
            x = (x - low) / (high - low).clamp_min(1e-30)
        if self.clip:
            x = torch.minimum(torch.maximum(x, self.low), self.high)
        return self.task.probabilities(self.model((x - self.offset) * self.factor))


def example_size(model: SegmentationModel, tile: int | None) -> tuple[int, int]:
    """A (height, width) to trace at: not a multiple of the model's step in either side
    (so the padding is traced), or the tile of a valid-convolution model."""
    if model.output_margin > 0:
        return tile, tile
    step = model.input_multiple
    return 2 * step + max(1, step // 4), 3 * step + max(1, step // 2)


def example_pixels(
    model: SegmentationModel,
    tile: int | None,
    batch: int = 2,
    size: tuple | None = None,
    dtype: str = "uint8",
) -> torch.Tensor:
    """A random batch (N, H, W, C) of `size` (by default `example_size`) in `dtype`."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, *(size or example_size(model, tile)), model.in_channels)
    if dtype == "float32":
        return torch.rand(shape, generator=generator) * 1000.0
    top = 256 if dtype == "uint8" else 65536
    values = torch.randint(0, top, shape, dtype=torch.int32, generator=generator)
    return values.to(getattr(torch, dtype))


def _traced_dtype(dtype: str) -> str:
    """The example dtype the ONNX tracer takes: it has no uint16, so int32 (see export_onnx)."""
    return "int32" if dtype == "uint16" else dtype


def export_onnx(pixel_model: PixelModel, path: Path, opset: int, tile: int | None) -> None:
    """Write the ONNX graph: dynamic batch, height and width (valid-convolution models: dynamic
    batch of fixed `tile` x `tile` tiles; their crops are traced as constants)."""
    model = pixel_model.model
    example = example_pixels(model, tile, dtype=_traced_dtype(pixel_model.dtype))
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
    if pixel_model.dtype == "uint16":
        _retype_input(path, "uint16")


def _retype_input(path: Path, dtype: str) -> None:
    """Declare the graph's input `dtype`: traced as int32, it feeds a single Cast to float,
    which takes uint16 as well, so the graph takes the images' own 16-bit values."""
    import onnx

    graph = onnx.load(str(path))
    users = [n for n in graph.graph.node if PIXELS in n.input]
    if [n.op_type for n in users] != ["Cast"]:
        raise RuntimeError(f"the graph's input feeds {[n.op_type for n in users]}, not one Cast")
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph.graph.input[0].type.tensor_type.elem_type = elem
    onnx.save(graph, str(path))


def export_pt2(pixel_model: PixelModel, path: Path, size: tuple[int, int]) -> tuple[int, int]:
    """torch.export the pixel model (dynamic batch, fixed `size`) to `path`; returns the size."""
    example = example_pixels(pixel_model.model, None, size=size, dtype=pixel_model.dtype)
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
    example = example_pixels(pixel_model.model, None, size=size, dtype=pixel_model.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(pixel_model.eval(), (example,))
    traced.save(str(path))
    return tuple(example.shape[1:3])
