"""A built wheel carries the configs, so an installed `unet` works from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_install_finds_configs_from_an_empty_folder(tmp_path):
    wheels, site, empty = tmp_path / "wheels", tmp_path / "site", tmp_path / "empty"
    empty.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("unetcli-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in (
        "unetcli/conf/train.yaml",
        "unetcli/conf/model/unet.yaml",
        "unetcli/conf/dataset/synthetic.yaml",
        "unetcli/conf/hardware/auto.yaml",
    ):
        assert name in names, name
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site), "NO_ALBUMENTATIONS_UPDATE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import unetcli.config_dir as c; print(c.config_dir())"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(site / "unetcli" / "conf")
    proc = subprocess.run(
        [sys.executable, "-m", "unetcli", "train", "--cfg", "job"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_target_: unetcli.models.UNet" in proc.stdout and "epochs:" in proc.stdout
    assert not any(empty.iterdir())
