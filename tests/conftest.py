"""Fixtures for the suite; the shared helpers live in tests/helpers.py.

The helpers are re-exported here because older test files import them from
`tests.conftest`; new code should import `tests.helpers`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import (  # noqa: F401  (re-exported for older imports)
    CONF,
    REPO,
    compose,
    only_run_dir,
    run_command,
    run_unet,
    tiny_overrides,
    unet_command,
)

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder to run `unet` in, so nothing lands in the checkout."""
    return tmp_path
