"""Fixtures for the suite; the shared helpers live in tests/helpers.py.

The helpers are re-exported here because older test files import them from
`tests.conftest`; new code should import `tests.helpers`.
"""

from __future__ import annotations

import os

# One intra-op thread per process, set before torch is first imported and
# inherited by the `unet` subprocesses: the suite's tensors are tiny, and where
# other work shares the cores (CI runners, shared machines) waiting OpenMP threads
# spin and cost several times the work itself.
# Run `OMP_NUM_THREADS=2 pytest` to choose otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Importing albumentations otherwise asks the internet for a newer version.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402, F401  (re-exported for older imports)
    CONF,
    REPO,
    compose,
    only_run_dir,
    run_command,
    run_unet,
    tiny_overrides,
    unet_command,
)


@pytest.fixture(scope="session", autouse=True)
def _tuning_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The hardware tuner's cache ($XDG_CACHE_HOME/unetcli) in a temporary folder, never
    the user's own; inherited by `unet` subprocesses."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder to run `unet` in, so nothing lands in the checkout."""
    return tmp_path
