"""The check before the first epoch lists every kind of bad file, with counts, and stops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests import fake_datasets
from tests.helpers import run_command
from unetcli.datasets.folder import FolderLayout
from unetcli.errors import UnetError


@pytest.fixture
def broken(tmp_path):
    """A folder dataset with one file of each problem (and 6 images without masks)."""
    root = fake_datasets.folder(tmp_path / "cells", n=16)
    for i in range(6):  # more than the examples shown
        (root / "masks" / f"cell_{i:03d}.png").unlink()
    cv2.imwrite(str(root / "masks" / "orphan.png"), np.zeros((4, 4), np.uint8))
    (root / "images" / "cell_006.png").write_bytes(b"not a png at all")
    cv2.imwrite(str(root / "masks" / "cell_007.png"), np.zeros((10, 10), np.uint8))
    values = np.zeros((40, 52), np.uint8)
    values[:5, :5], values[5:10, 5:10] = 1, 9
    cv2.imwrite(str(root / "masks" / "cell_008.png"), values)
    return root


def test_every_problem_is_listed_with_counts(broken):
    layout = FolderLayout(broken)
    with pytest.raises(UnetError) as err:
        layout.check(layout.labelled_samples())
    text = str(err.value)
    assert "6 image(s) of 16 have no mask file, e.g. images/cell_000.png (no masks/" in text
    assert "(and 3 more)" in text
    assert "1 mask file(s) have no image, e.g. masks/orphan.png" in text
    assert "1 file(s) cannot be decoded, e.g. images/cell_006.png" in text
    assert "cell_007.png is 10x10, its image 52x40" in text
    assert "cell_008.png holds values 0, 1, 9" in text


def test_check_files_false_only_looks_for_missing_masks(broken):
    layout = FolderLayout(broken, check_files=False)
    with pytest.raises(UnetError) as err:
        layout.check(layout.labelled_samples())
    assert "have no mask file" in str(err.value) and "cannot be decoded" not in str(err.value)


def test_a_clean_dataset_passes(tmp_path):
    layout = FolderLayout(fake_datasets.folder(tmp_path / "cells", n=4))
    layout.check(layout.labelled_samples())


def test_train_stops_before_the_first_epoch(broken, tmp_path, capsys):
    # In-process: the UnetError itself (the CLI's exit 1 without a traceback is
    # test_cli.py::test_empty_dataset_folder_says_where_it_looked).
    args = ["dataset=folder", f"dataset.root={broken}", "model.widths=[4,8]",
            "hardware.num_workers=0", "trainer.progress=false"]  # fmt: skip
    with pytest.raises(UnetError, match=r"6 image\(s\) of 16 have no mask file"):
        run_command("train", args, tmp_path / "run")
    assert "epoch 1" not in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.pt"))
