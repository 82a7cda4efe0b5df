"""Keeping the resident size flat over a long run, and a training step's blocks reused.

Every finished image allocates and frees full-size arrays (a 1918x1280
probability map is 10 MB, its mask 2.4 MB) on whichever finishing thread
handled it. glibc's adaptive mmap threshold rises after the first such block
is freed, and from then on these blocks are carved from per-thread heaps that
fragment: the resident size wanders by tens of MB and ratchets up in steps
over thousands of images, although nothing accumulates. A fixed threshold of
1 MB (which also turns the adaptation off) maps and unmaps every large block,
so the resident size follows what is live: over 600 Carvana-size images
(tiny model) it stayed at 325-350 MB with a peak of 361-364 MB, against
400-490 MB and a peak climbing from 441 to 477 MB without it.
The cost is a page fault per fresh page of a large block; on a GPU it is
nil, on a CPU within measurement noise. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
THRESHOLD_BYTES = 1 << 20
# glibc's largest threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
REUSE_BYTES = 32 << 20


def steady_memory() -> bool:
    """Fix glibc's mmap threshold at 1 MB for this process; True if it was set."""
    return _mmap_threshold(THRESHOLD_BYTES)


def reuse_blocks() -> bool:
    """Fix glibc's mmap threshold at its 32 MB maximum; True if it was set.

    For a loop that allocates and frees the same blocks again and again (a training
    step's activations): at 1 MB each of them was mapped afresh and faulted in page by
    page on every step, which made a CPU step 1.5x slower (a 16-wide U-Net, batch 4 at
    128x128: 280 against 185 ms). Kept in the heap, they are reused as they are.
    """
    return _mmap_threshold(REUSE_BYTES)


def _mmap_threshold(size: int) -> bool:
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    return bool(mallopt(M_MMAP_THRESHOLD, size))
