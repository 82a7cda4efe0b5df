"""Seeds: one for the whole process, and stable seeds mixed from several integers."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for the DataLoader's shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def mix(*values: int) -> int:
    """A 32-bit seed from several integers (stable across runs and machines)."""
    return int(np.random.SeedSequence([int(v) % 2**32 for v in values]).generate_state(1)[0])
