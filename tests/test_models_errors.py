"""A model config the user got wrong is one paragraph naming the key, not a traceback."""

from __future__ import annotations

import pytest

from tests.conftest import run_unet, tiny_overrides
from unetcli.errors import UnetError
from unetcli.models import UNet, UNetOriginal, UNetResNet

BAD_CONFIGS = {
    "norm": (lambda: UNet(3, 1, [4, 8], norm="layer"), "model.norm must be one of"),
    "upsampling": (lambda: UNet(3, 1, [4, 8], "nearest"), "model.upsampling must be one of"),
    "one level": (lambda: UNetOriginal(3, 1, [4]), "model.widths needs at least two levels"),
    "zero width": (lambda: UNet(3, 1, [4, 0]), "model.widths must be positive"),
    "dropout": (lambda: UNet(3, 1, [4, 8], dropout=1.0), r"model.dropout must be in \[0, 1\)"),
    "decoder": (
        lambda: UNetResNet(3, 1, "resnet18", decoder_channels=[8, 8]),
        "model.decoder_channels needs five",
    ),
    "encoder": (lambda: UNetResNet(3, 1, "resnet50"), "model.encoder must be one of"),
    "classes": (lambda: UNet(3, 0, [4, 8]), "model.num_classes must be at least 1"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_model_settings_name_their_key(name):
    build, message = BAD_CONFIGS[name]
    with pytest.raises(UnetError, match=message):
        build()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["model.norm=nope"], "model.norm"),
        (["model=unet_resnet", "model.decoder_channels=[8,8]"], "model.decoder_channels"),
    ],
)
def test_unet_train_reports_a_bad_model_setting_without_a_traceback(tmp_path, overrides, key):
    # The model fails as it is built, so its widths do not matter (unet_resnet has none).
    small = [
        o for o in tiny_overrides(tmp_path) if not o.startswith(("dataset.layout.num_", "model."))
    ]
    small += ["dataset.layout.num_objects=5", "dataset.layout.num_test=1"]
    proc = run_unet("train", *small, *overrides, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and key in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
