"""The 2015 U-Net paper's overlap-tile strategy: whole images from a valid-convolution model.

A model with `output_margin` m > 0 (unet_original) predicts only the centre
of its input: a tile of side T gives T - 2m outputs. To segment a whole image
of any size, the image is mirror-padded and cut into overlapping input tiles
whose output windows sit edge to edge; the mirrored context at the image's
borders stands in for the missing neighbourhood, as in the paper's Fig. 2.

Tiles start on multiples of the model's pooling grid (`input_multiple`,
2**depth), so each output pixel sees exactly the input it would see in one
pass over a larger image: inside the image, the result equals direct
prediction wherever direct prediction reaches.
"""

from __future__ import annotations

import torch

from unetcli.core.spatial import mirror_pad
from unetcli.core.tiling import TileGrid, tile_grid, tile_layout
from unetcli.models.contract import SegmentationModel

__all__ = ["TileGrid", "overlap_tile_predict", "tile_grid"]


@torch.no_grad()
def overlap_tile_predict(
    model: SegmentationModel,
    images: torch.Tensor,
    tile_size: int | None = None,
    batch_size: int = 4,
) -> torch.Tensor:
    """Logits (N, C, H, W) at the input's size for a model whose output loses a margin a side.

    `tile_size` (default: the model's `tile_size`, 572 for the paper's net) is
    the input side of each tile, snapped up to the model's `valid_input_size`;
    the margin and pooling grid are the model's `output_margin` and
    `input_multiple`. The caller sets eval mode, the device and any autocast;
    tiles are run `batch_size` at a time.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    grid = tile_grid(model, tile_size)
    n, _, height, width = images.shape
    rows, pad_bottom = tile_layout(height, grid)
    cols, pad_right = tile_layout(width, grid)
    padded = mirror_pad(images, grid.pad_before, pad_bottom, grid.pad_before, pad_right)
    origins = [(r * grid.stride, c * grid.stride) for r in range(rows) for c in range(cols)]
    tile, skip = grid.tile, grid.skip
    out: torch.Tensor | None = None
    for index in range(n):
        for start in range(0, len(origins), batch_size):
            chunk = origins[start : start + batch_size]
            tiles = torch.stack([padded[index, :, y : y + tile, x : x + tile] for y, x in chunk])
            logits = model(tiles)
            if out is None:
                out = logits.new_zeros((n, logits.shape[1], height, width))
            for (y, x), result in zip(chunk, logits):
                h = min(grid.stride, height - y)
                w = min(grid.stride, width - x)
                out[index, :, y : y + h, x : x + w] = result[:, skip : skip + h, skip : skip + w]
    assert out is not None
    return out
