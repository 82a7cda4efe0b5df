"""Covering images (full, sliding windows, overlap-tile routing) and test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unetcli.core.hardware import Runtime
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.inference.modes import Cover, cover, gaussian_weights, sliding_window, window_starts
from unetcli.inference.tta import TTA_NAMES, check_tta, with_tta
from unetcli.models import SegmentationModel

CPU = Runtime(torch.device("cpu"), None, False, 0, False)
BINARY = Task("binary", 1)
FULL = Cover("full", None, 0.5, 4, BINARY)


class Recording(SegmentationModel):
    """A same-size network under the model contract that records the input shape of every call."""

    def __init__(self, inner: nn.Module, input_multiple: int = 1) -> None:
        super().__init__(in_channels=3, num_classes=1)
        self.inner = inner
        self.input_multiple = input_multiple
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


def pointwise_model() -> Recording:
    """Receptive field of one pixel: where windows fall cannot matter."""
    torch.manual_seed(0)
    return Recording(nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 1, 1))).eval()


def local_model() -> Recording:
    """A 5x5 receptive field, zero-padded: window edges do change nearby pixels."""
    torch.manual_seed(1)
    return Recording(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 1, 3, padding=1))
    ).eval()


def full(model: SegmentationModel, images: torch.Tensor) -> torch.Tensor:
    return cover(model, images, CPU, FULL)


@pytest.mark.parametrize(
    ("size", "window", "overlap"),
    [((70, 90), (32, 32), 0.5), ((64, 100), (24, 40), 0.25), ((33, 47), (16, 16), 0.75)],
)
def test_sliding_equals_full_when_windows_do_not_matter(size, window, overlap):
    model = pointwise_model()
    images = torch.randn(2, 3, *size)
    whole = full(model, images)
    model.shapes.clear()
    slid = sliding_window(model, images, CPU, Cover("sliding", window, overlap, 3, BINARY))
    # Many windows of the window size were run, in batches of at most 3.
    assert len(model.shapes) > 2 and all(s[0] <= 3 and s[2:] == window for s in model.shapes)
    torch.testing.assert_close(slid, whole, atol=1e-5, rtol=1e-5)


def test_sliding_blend_has_no_seams():
    model = local_model()
    images = torch.randn(1, 3, 96, 128)
    whole = full(model, images)
    blended = sliding_window(model, images, CPU, Cover("sliding", (32, 32), 0.5, 8, BINARY))
    tiled = sliding_window(
        model, images, CPU, Cover("sliding", (32, 32), 0.0, 8, BINARY)
    )  # abutting windows
    seam = (tiled - whole).abs().amax()
    # Without overlap the zero-padded window edges show as seams...
    assert seam > 0.05
    # ...with Gaussian-weighted overlap they are averaged away (edge pixels weigh ~1e-3).
    assert (blended - whole).abs().amax() < 2e-3


def test_gaussian_weights_peak_in_the_centre_and_never_vanish():
    w = gaussian_weights(31, 20)
    assert w.shape == (31, 20)
    assert w.max() == pytest.approx(1.0, abs=0.02) and w.min() > 0
    assert w[15, 10] > w[0, 0] and torch.equal(w, w.flip(0)) and torch.equal(w, w.flip(1))


@pytest.mark.parametrize(
    ("length", "window", "overlap"),
    [(100, 32, 0.5), (32, 32, 0.5), (20, 32, 0.5), (1000, 256, 0.25)],
)
def test_window_starts_cover_the_side(length, window, overlap):
    starts = window_starts(length, window, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - window)
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps <= window * (1 - overlap) + 1).all()


def symmetric_model() -> Recording:
    """A conv whose kernel is unchanged by flips and quarter turns: flip-equivariant."""
    conv = nn.Conv2d(3, 1, 3, padding=1)
    ring = torch.tensor([[0.2, -0.5, 0.2], [-0.5, 1.0, -0.5], [0.2, -0.5, 0.2]])
    with torch.no_grad():
        conv.weight.copy_(torch.stack([ring * s for s in (1.0, -0.7, 0.4)])[None])
        conv.bias.fill_(0.1)
    return Recording(conv).eval()


def test_tta_of_a_flip_equivariant_model_changes_nothing():
    model = symmetric_model()
    images = torch.randn(2, 3, 40, 56)

    def plain(x):
        return full(model, x)

    averaged = with_tta(plain, list(TTA_NAMES))(images)
    torch.testing.assert_close(averaged, plain(images), atol=1e-5, rtol=1e-5)


def test_tta_maps_each_view_back_before_averaging():
    model = local_model()  # not equivariant: TTA must change the result
    images = torch.randn(1, 3, 24, 40)

    def plain(x):
        return full(model, x)

    got = with_tta(plain, ["hflip", "rot90"])(images)
    expected = (
        plain(images)
        + plain(images.flip(-1)).flip(-1)
        + plain(images.rot90(1, (-2, -1))).rot90(-1, (-2, -1))
    ) / 3
    assert got.shape == (1, 1, 24, 40)
    torch.testing.assert_close(got, expected)
    assert (got - plain(images)).abs().max() > 1e-3


def test_tta_names_are_checked():
    assert check_tta(["vflip", "rot180"], "predict.tta") == ["vflip", "rot180"]
    with pytest.raises(UnetError, match=r"predict\.tta.*unknown"):
        check_tta(["flip"], "predict.tta")
    with pytest.raises(UnetError, match="twice"):
        check_tta(["hflip", "hflip"], "predict.tta")


def test_full_pads_once_to_the_models_valid_size_and_crops_back():
    model = pointwise_model()
    model.input_multiple = 8
    images = torch.randn(2, 3, 30, 37)
    probs = full(model, images)
    assert model.shapes == [(2, 3, 32, 40)]  # mirror-padded to the model's multiple
    assert probs.shape == (2, 1, 30, 37)
    unpadded = Recording(model.inner).eval()  # the same network, taking any size
    torch.testing.assert_close(probs, full(unpadded, images))


class ValidConvModel(SegmentationModel):
    """Loses 4 pixels a side and predicts its input's first channel: a known answer."""

    output_margin = 4
    tile_size = 12

    def __init__(self) -> None:
        super().__init__(in_channels=3, num_classes=1)
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        self.shapes.append(tuple(x.shape[-2:]))
        return x[:, :1, 4:-4, 4:-4]


@pytest.mark.parametrize(
    ("options", "tile"),
    [(Cover("sliding", (16, 10), 0.5, 2, BINARY), 16), (Cover("full", None, 0.5, 2, BINARY), 12)],
)
def test_valid_convolution_models_go_to_overlap_tile(options, tile):
    images = torch.randn(2, 3, 30, 23)
    model = ValidConvModel()
    probs = cover(model, images, CPU, options)
    # Tiles of the sliding window's longer side, else of the model's own tile_size...
    assert model.shapes and set(model.shapes) == {(tile, tile)}
    # ...whose outputs, with mirrored context at the border, cover the whole image.
    torch.testing.assert_close(probs, torch.sigmoid(images[:, :1]))
