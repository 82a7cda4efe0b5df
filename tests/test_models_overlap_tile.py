"""unet_original's overlap-tile prediction: whole images, equal to direct prediction inside."""

from __future__ import annotations

import pytest
import torch

from unetcli.core.spatial import mirror_pad
from unetcli.errors import UnetError
from unetcli.inference.overlap_tile import overlap_tile_predict
from unetcli.models import UNet, UNetOriginal


@pytest.mark.parametrize(
    ("widths", "size", "tile"),
    [
        ([4, 8, 16], (113, 150), 60),  # depth 2: margin 20, many 20x20 output tiles
        ([2, 4, 4, 8, 8], (380, 396), 252),  # the paper's depth: margin 92, 64-pixel steps
    ],
)
def test_overlap_tile_equals_direct_prediction_in_the_interior(widths, size, tile):
    torch.manual_seed(0)
    model = UNetOriginal(2, 3, widths).eval()
    height, width = (model.valid_input_size(s) for s in size)
    image = torch.randn(1, 2, height, width)
    with torch.no_grad():
        direct = model(image)  # covers the interior only
    tiled = overlap_tile_predict(model, image, tile_size=tile)
    m = model.output_margin
    assert tiled.shape == (1, 3, height, width)
    assert direct.shape[-2:] == (height - 2 * m, width - 2 * m)
    assert min(height, width) - 2 * m > 2 * (tile - 2 * m)  # several tiles a side: seams inside
    torch.testing.assert_close(
        tiled[..., m : height - m, m : width - m], direct, rtol=1e-4, atol=1e-5
    )
    assert torch.isfinite(tiled).all()


def test_tiles_cover_the_border_with_mirrored_context():
    torch.manual_seed(0)
    model = UNetOriginal(1, 1, [4, 8, 16]).eval()
    image = torch.randn(2, 1, 57, 71)  # not a size the network takes directly
    tiled = overlap_tile_predict(model, image, tile_size=60)
    assert tiled.shape == (2, 1, 57, 71)
    # The prediction at the image's corner is that of the mirror-padded image.
    m = model.output_margin
    padded = mirror_pad(image, m, m, m, m)
    with torch.no_grad():
        direct = model(padded[..., : model.valid_input_size(57 + 2 * m), :])
    # Rows 0..(20) come from the first tile, whose context is the mirrored border.
    torch.testing.assert_close(tiled[..., :20, :20], direct[..., :20, :20], rtol=1e-4, atol=1e-5)


def test_defaults_come_from_the_model_and_batches_do_not_matter():
    torch.manual_seed(0)
    model = UNetOriginal(1, 1, [4, 8, 16]).eval()  # tile_size 572 (valid for every depth)
    image = torch.randn(3, 1, 40, 33)
    one = overlap_tile_predict(model, image, 60, batch_size=1)
    many = overlap_tile_predict(model, image, 60, batch_size=64)
    torch.testing.assert_close(one, many)
    assert overlap_tile_predict(model, image).shape == (3, 1, 40, 33)


def test_mirror_pad_reflects_more_than_the_image_size():
    row = torch.arange(3.0).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    out = mirror_pad(row, 0, 0, 5, 5)
    assert out[0, 0, 0].tolist() == [
        1.0,
        0.0,
        1.0,
        2.0,
        1.0,
        0.0,
        1.0,
        2.0,
        1.0,
        0.0,
        1.0,
        2.0,
        1.0,
    ]


def test_too_small_a_tile_is_refused_naming_the_window_key():
    model = UNetOriginal(1, 1, [2, 2, 2, 2, 2]).eval()  # margin 92 on a 16-pixel grid
    with pytest.raises(UnetError, match=r"too small.*predict\.window.*at least 204"):
        overlap_tile_predict(model, torch.zeros(1, 1, 200, 200), tile_size=188)
    # 204, the smallest tile it names, works: 16 output pixels a step.
    tiled = overlap_tile_predict(model, torch.zeros(1, 1, 40, 40), tile_size=204)
    assert tiled.shape[-2:] == (40, 40)


def test_a_model_without_a_tile_size_needs_one_given():
    model = UNet(1, 1, [4, 8]).eval()  # takes whole images: tile_size None
    with pytest.raises(UnetError, match="names no tile_size"):
        overlap_tile_predict(model, torch.zeros(1, 1, 20, 20))


def test_training_context_pads_only_valid_convolution_models():
    from unetcli.training.step import crop_to_output, with_context

    deep = UNetOriginal(1, 1, [2, 2, 2, 2, 2]).eval()  # margin 92, inputs from 188
    small = torch.randn(2, 1, 48, 64)
    padded = with_context(small, deep, "auto")  # too small to use as it is: mirrored context
    assert padded.shape[-2:] == (48 + 184, 64 + 184)
    with torch.no_grad():
        assert deep(padded).shape[-2:] == (48, 64)  # the output covers the whole image
    torch.testing.assert_close(padded[..., 92:-92, 92:-92], small)
    medium = torch.randn(1, 1, 200, 210)  # usable as it is, but smaller than one tile
    assert with_context(medium, deep, "auto").shape[-2:] == (384, 394)
    large = torch.randn(1, 1, 572, 580)
    assert with_context(large, deep, "auto") is large  # a whole tile: the paper's 572 -> 388
    assert with_context(large, deep, True).shape[-2:] == (756, 764)
    assert with_context(small, deep, False) is small
    plain = UNet(1, 1, [4, 8])
    assert with_context(small, plain, True) is small
    # Without context the mask is centre-cropped to what the model predicts.
    mask = torch.arange(572 * 580).view(1, 572, 580)
    with torch.no_grad():
        logits = deep(large)
    cropped = crop_to_output(mask, logits)
    assert cropped.shape[-2:] == logits.shape[-2:] == (388, 396)
    assert cropped[0, 0, 0] == mask[0, 92, 92]
