"""Kaggle credentials never reach a log, summary, config dump or error message.

A real `unet download` (subprocess, real kaggle client, loopback Kaggle) runs with each kind of
credential, successful and rejected; then every file it wrote and everything it printed is
searched for the key and the token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import fake_datasets
from tests.helpers import run_unet
from tests.kaggle_server import KEY, TOKEN, KaggleServer

MC_SLUG = "kmader/pulmonary-chest-xray-abnormalities"
REJECTED = "feedface0123456789rejectedkey000"


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    chest = tmp_path_factory.mktemp("published") / "pulmonary"
    fake_datasets.montgomery(chest / "Montgomery" / "MontgomerySet", n=4)
    with KaggleServer() as server:
        server.add_dataset(MC_SLUG, fake_datasets.zip_tree(chest))
        yield server


def files_with(secrets: list[str], work: Path) -> list[str]:
    """Every file under `work` (the credentials folder aside) that holds one of `secrets`."""
    found = []
    for path in work.rglob("*"):
        if not path.is_file() or ".kaggle" in path.parts:
            continue
        data = path.read_bytes()
        found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "credentials, key, ok",
    [("kaggle.json", KEY, True), ("token", TOKEN, True), ("kaggle.json", REJECTED, False)],
)
def test_no_output_file_or_message_holds_the_key(kaggle, tmp_path, credentials, key, ok):
    env = kaggle.env(tmp_path / "home", credentials=credentials, key=key)
    proc = run_unet(
        "download", "dataset=montgomery", f"paths.data_dir={tmp_path / 'data'}",
        f"paths.output_root={tmp_path / 'outputs'}", cwd=tmp_path, check=False, env=env,
    )  # fmt: skip
    assert (proc.returncode == 0) == ok, proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and ".kaggle" not in p.parts]
    assert any(p.name == "config.yaml" for p in written)  # Hydra's config dump is searched
    if ok:
        assert any(p.suffix == ".png" for p in written)
    secrets = [key, KEY, TOKEN]
    assert files_with(secrets, tmp_path) == []
    for secret in secrets:
        assert secret not in proc.stdout and secret not in proc.stderr
