"""Prediction moves each batch to the device once, whatever the TTA views and ensemble members.

A CPU has no upload to count, so uploads are stood in for: the test's `to_input` marks what
it returns as "on the device" (a tensor subclass that every operation on it propagates, so
TTA views, padding and model outputs of an uploaded batch stay marked), and counts the calls
that get an unmarked tensor: a copy from the host.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import compose, tiny_overrides
from unetcli.core.hardware import Runtime
from unetcli.core.task import Task
from unetcli.inference.modes import cover
from unetcli.inference.options import InferenceOptions
from unetcli.inference.predictor import Predictor
from unetcli.inference.restore import Restored
from unetcli.inference.transfer import stack_batch, to_host
from unetcli.inference.tta import with_tta
from unetcli.models.contract import build_model

CPU = Runtime(torch.device("cpu"), None, False, 0, False)
CPU_CHANNELS_LAST = Runtime(torch.device("cpu"), None, True, 0, False)


class OnDevice(torch.Tensor):
    """A tensor the test's stand-in upload produced (and everything computed from it)."""


def _member(tmp_path: Path, seed: int) -> Restored:
    cfg = compose("train", [*tiny_overrides(tmp_path), "model.widths=[4,8]", "paths.run_dir=."])
    torch.manual_seed(seed)
    model = build_model(cfg.model).eval()
    return Restored(tmp_path / f"{seed}.pt", cfg, model, None, 0, {})


def _options(mode: str = "full", window: tuple[int, int] | None = None) -> InferenceOptions:
    """Two TTA views (the image and its mirror) of a binary task."""
    return InferenceOptions(Task("binary", 1), mode, ("hflip",), window, 0.5, 2, 0.5, 0, False, 1)


@pytest.fixture
def counted_uploads(monkeypatch) -> list[int]:
    """Host-to-device copies made through `Runtime.to_input` while the test runs."""
    uploads: list[int] = []
    original = Runtime.to_input

    def to_input(self: Runtime, images: torch.Tensor) -> torch.Tensor:
        if isinstance(images, OnDevice):
            return original(self, images)
        uploads.append(len(images))
        return original(self, images).as_subclass(OnDevice)

    monkeypatch.setattr(Runtime, "to_input", to_input)
    return uploads


@pytest.mark.parametrize("runtime", [CPU, CPU_CHANNELS_LAST], ids=["nchw", "channels_last"])
def test_an_ensemble_with_tta_uploads_each_batch_once(tmp_path, counted_uploads, runtime):
    members = (_member(tmp_path, 0), _member(tmp_path, 1))
    predictor = Predictor(members, _options(), runtime)
    for _ in range(3):  # three batches
        predictor(torch.randn(2, 3, 48, 64))
    assert counted_uploads == [2, 2, 2]  # 2 members x 2 views each: still one copy a batch


def test_sliding_windows_are_cut_from_the_uploaded_image(tmp_path, counted_uploads):
    options = _options("sliding", (32, 32))
    Predictor((_member(tmp_path, 0),), options, CPU)(torch.randn(1, 3, 48, 64))
    assert counted_uploads == [1]


@pytest.mark.parametrize("runtime", [CPU, CPU_CHANNELS_LAST], ids=["nchw", "channels_last"])
def test_predicted_probabilities_are_those_of_each_view_uploaded_on_its_own(tmp_path, runtime):
    """The members' TTA averages computed as before the single upload: bit for bit."""
    members = (_member(tmp_path, 0), _member(tmp_path, 1))
    options = _options()
    images = torch.randn(3, 3, 48, 64)
    predicted = Predictor(members, options, runtime)(images)
    views = [
        with_tta(lambda b, m=m: cover(m.model, b, runtime, options), options.tta)(images)
        for m in members
    ]
    assert torch.equal(predicted, (views[0] + views[1]) / 2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_to_input_leaves_a_tensor_already_on_the_device_as_it_is(channels_last):
    runtime = Runtime(torch.device("cpu"), None, channels_last, 0, False)
    images = runtime.to_input(torch.randn(2, 3, 8, 8))
    assert runtime.to_input(images) is images


def test_on_the_cpu_stacking_and_reading_back_are_the_plain_operations():
    images = [torch.randn(3, 4, 5) for _ in range(2)]
    assert torch.equal(stack_batch(images, CPU), torch.stack(images))
    pinned_asked = Runtime(torch.device("cpu"), None, False, 0, True)  # no CUDA: not pinned
    assert not stack_batch(images, pinned_asked).is_pinned()
    probs = torch.rand(2, 1, 4, 5)
    assert np.array_equal(to_host(probs, CPU), probs.numpy())
