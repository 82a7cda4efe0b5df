import pytest
import torch

from unetcli.errors import UnetError
from unetcli.models import UNet


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (1, 1), (17, 100)])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_output_has_input_size_for_any_size(size, upsampling):
    model = UNet(3, 1, widths=[4, 8, 16], upsampling=upsampling).eval()
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)


def test_multiclass_output_and_backward_on_odd_size():
    model = UNet(1, 4, widths=[4, 8, 16, 32])
    x = torch.randn(2, 1, 45, 31)
    out = model(x)
    assert out.shape == (2, 4, 45, 31)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_default_widths_match_the_write_ups():
    model = UNet()  # 64-128-256-512 with a 1024 bottleneck
    params = sum(p.numel() for p in model.parameters())
    assert model.input_multiple == 2**4  # four down-samplings
    assert abs(params / 1e6 - 31.0) < 0.1  # the number in conf/model/unet.yaml


def test_wrong_channel_count_says_which_setting_to_change():
    model = UNet(3, 1, widths=[4, 8])
    with pytest.raises(UnetError, match=r"got \(2, 1, 16, 16\); set dataset.in_channels"):
        model(torch.randn(2, 1, 16, 16))
