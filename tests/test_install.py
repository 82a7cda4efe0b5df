"""A built wheel carries the configs, so an installed `unet` trains, evaluates and
predicts from an empty folder, with nothing of the checkout on its path."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import CONF, REPO, only_run_dir

pytestmark = pytest.mark.slow

# What the build reads: the project file, its readme, the package (with the
# unetcli/conf link) and the configs it links to.
BUILD_INPUTS = ["pyproject.toml", "README.md", "unetcli", "conf"]


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the build inputs only, so nothing else of the checkout (a
    stale build/ folder, local data or checkpoints) can leak into the wheel."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("unetcli-*.whl")
    return wheel


def installed_unet(site: Path) -> list[str]:
    """The wheel's own `unet` console script (pip --target puts it in bin/)."""
    script = site / "bin" / "unet"
    assert script.is_file(), "the wheel installed no `unet` console script"
    return [str(script)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(the wheel, its install folder, an environment that sees only that install)."""
    tmp_path = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(site), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return wheel, site, env


def test_wheel_holds_every_config_and_package(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"unetcli/conf/{p.relative_to(CONF).as_posix()}" for p in CONF.rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)
    packages = {
        f"{p.relative_to(REPO).as_posix()}"
        for p in (REPO / "unetcli").rglob("__init__.py")
        if "conf" not in p.parts
    }
    assert packages <= names, sorted(packages - names)


def run_installed(site: Path, env: dict[str, str], cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [*installed_unet(site), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"unet {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_installed_unet_trains_evaluates_and_predicts_from_an_empty_folder(installed, tmp_path):
    _, site, env = installed
    found = subprocess.run(
        [sys.executable, "-c",
         "import unetcli.config.location as c; print(c.__file__, c.config_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    package = site / "unetcli"
    assert found == [str(package / "config" / "location.py"), str(package / "conf")]

    # Default paths (data/, outputs/) are relative to this empty folder.
    tiny = [
        "dataset.layout.num_objects=6", "dataset.layout.views=2", "dataset.layout.num_test=3",
        "dataset.layout.height=32", "dataset.layout.width=48", "dataset.image_size=[32,48]",
        "model.widths=[4,8]", "trainer.epochs=1", "trainer.max_steps_per_epoch=2",
        "trainer.batch_size=4", "trainer.progress=false", "hardware.num_workers=0",
    ]  # fmt: skip
    assert "unet train: done" in run_installed(site, env, tmp_path, "train", *tiny)
    run = only_run_dir(tmp_path / "outputs" / "train")
    best = run / "checkpoints" / "best.pt"
    assert best.is_file() and (run / "metrics.csv").is_file()
    assert (tmp_path / "data" / "synthetic" / "train").is_dir()

    run_installed(site, env, tmp_path, "evaluate", f"checkpoint={best}", "evaluate.progress=false")
    evaluated = only_run_dir(tmp_path / "outputs" / "evaluate")
    report = json.loads((evaluated / "metrics.json").read_text())
    assert 0 <= report["metrics"]["dice"] <= 1

    run_installed(site, env, tmp_path, "predict", f"checkpoint={best}", "predict.progress=false")
    submission = only_run_dir(tmp_path / "outputs" / "predict") / "submission.csv.gz"
    rows = gzip.decompress(submission.read_bytes()).decode().splitlines()
    assert rows[0] == "img,rle_mask" and len(rows) == 1 + 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "outputs"]
