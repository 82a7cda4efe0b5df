"""Whether a set of images holds more than one size, read from a bounded number of headers.

cuDNN autotuning (`cudnn.benchmark`) pays once per input shape: where whole images of
different sizes go through the model one by one (validation without `dataset.image_size`,
`predict.mode=full`), each new size is autotuned again, which costs more than it saves.
"""

from __future__ import annotations

from collections.abc import Sequence

from unetcli.datasets.base import Sample
from unetcli.datasets.file_checks import image_size

#: Headers read at most: spread over the list, enough to see a set of mixed sizes.
LOOKED_AT = 256


def mixed_sizes(samples: Sequence[Sample], looked_at: int = LOOKED_AT) -> bool:
    """True if the images (up to `looked_at` of them, spread over the list) differ in size,
    or a size cannot be read from its file (then they may)."""
    if len(samples) < 2:
        return False
    stride = max(1, len(samples) // looked_at)
    sizes = set()
    for sample in samples[::stride][:looked_at]:
        size = image_size(sample.image) if sample.image.is_file() else None
        if size is None:
            return True
        sizes.add(size)
        if len(sizes) > 1:
            return True
    return False
