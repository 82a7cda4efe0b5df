"""The torch-free runner repeats predict's cover modes and TTA in NumPy: held equal here.

`unetcli.runner.cover` cannot import torch, so its whole-image, sliding-window and
overlap-tile covers and its TTA views are a second writing of `unetcli.inference.modes`
and `unetcli.inference.tta`. The same network is run both ways (the runner's "graph" is the
torch model behind a NumPy function, so only the covering math differs) on every mode and
every view alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetcli.core import normalisation
from unetcli.core.hardware import Runtime
from unetcli.core.task import Task
from unetcli.export.graph import PixelModel
from unetcli.inference.modes import cover
from unetcli.inference.options import InferenceOptions
from unetcli.inference.tta import TTA_NAMES, with_tta
from unetcli.models import UNet, UNetOriginal
from unetcli.runner.cover import with_tta as runner_with_tta
from unetcli.runner.info import InferenceInfo

CPU = Runtime(torch.device("cpu"), None, False, 0, False)
MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
# (mode, window, model): whole images, sliding windows, a valid-convolution model's tiles.
MODES = [
    ("full", None, "padded"),
    ("sliding", (24, 32), "padded"),
    ("full", (44, 44), "valid"),
]


def network(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "valid":
        return UNetOriginal(in_channels=3, num_classes=2, widths=[4, 8], dropout=0.0).eval()
    return UNet(in_channels=3, num_classes=1, widths=[4, 8, 16]).eval()


def settings(model, mode: str, window, view: str | None):
    task = Task("binary", 1) if model.num_classes == 1 else Task("multiclass", 2)
    tta = (view,) if view else ()
    options = InferenceOptions(task, mode, tta, window, 0.5, 2, 0.5, 0, False, 1)
    info = InferenceInfo(
        channels=3, input_multiple=model.input_multiple, output_margin=model.output_margin,
        min_input_size=model.min_input_size, tile_size=model.tile_size, task=task, mode=mode,
        image_size=None, window=window, overlap=0.5, tta=tta, threshold=0.5,
        min_object_size=0, fill_holes=False,
    )  # fmt: skip
    return options, info


@pytest.mark.parametrize("view", [None, *TTA_NAMES])
@pytest.mark.parametrize(("mode", "window", "kind"), MODES)
def test_the_runner_covers_and_turns_as_predict_does(mode, window, kind, view):
    model = network(kind)
    options, info = settings(model, mode, window, view)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    pixel_model = PixelModel(
        model, normalisation.build("per_image", MEAN, STD), options.task
    ).eval()

    def graph(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return pixel_model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    # predict's side: normalised float images, torch cover and TTA.
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
    x = (x - pixel_model.offset) * pixel_model.factor
    expected = with_tta(lambda b: cover(model, b, CPU, options), options.tta)(x).numpy()
    got = runner_with_tta(graph, info, pixels)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_every_view_is_compared():
    """A view added to predict's TTA without the runner's copy fails here, not in a deployment."""
    from unetcli.runner import cover as runner

    assert set(runner._FORWARD) == set(runner._INVERSE) == set(TTA_NAMES)
