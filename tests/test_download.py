"""`unet download` with the real kaggle client against a loopback Kaggle (kaggle_server.py).

The served zips are built from generated files in each dataset's published
layout; every case runs the real `unet download` in a subprocess.
"""

from __future__ import annotations

import json
import os
import resource
import signal
from pathlib import Path

import pytest

from tests import fake_datasets
from tests.helpers import interruptible, run_command, run_unet, unet_command
from tests.kaggle_server import KaggleServer
from unetcli.datasets.carvana import CarvanaLayout
from unetcli.download.archive import unpack
from unetcli.download.credentials import find_credentials
from unetcli.errors import UnetError

COMPETITION = "carvana-image-masking-challenge"
MB_SLUG = "balraj98/massachusetts-buildings-dataset"
MC_SLUG = "kmader/pulmonary-chest-xray-abnormalities"
CUT_AT = 1_200_000  # bytes of train.zip sent before the connection drops


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """The loopback server, serving Carvana (competition) and the two datasets."""
    src = tmp_path_factory.mktemp("published")
    # Noisy 240x360 JPEGs make train.zip larger than the client's 1 MiB chunk,
    # so a cut transfer leaves a partial file to resume.
    car = fake_datasets.carvana(src / "carvana", size=(240, 360))
    submission = (car / "sample_submission.csv").read_bytes()
    files = {
        "train.zip": fake_datasets.zip_tree(car, only=["train"]),
        "train_masks.zip": fake_datasets.zip_tree(car, only=["train_masks"]),
        "test.zip": fake_datasets.zip_tree(car, only=["test"]),
        "sample_submission.csv": fake_datasets.zip_members({"sample_submission.csv": submission}),
        "metadata.csv": fake_datasets.zip_members({"metadata.csv": b"id,year\n"}),
    }
    # The whole-competition archive holds the per-file zips (nested zips).
    whole = fake_datasets.zip_members(
        {
            **{k: v for k, v in files.items() if k.endswith(".zip")},
            "train_hq.zip": files["train.zip"],
            "sample_submission.csv": submission,
            "metadata.csv": b"id,year\n",
        }
    )
    buildings = fake_datasets.buildings(src / "massachusetts")
    chest = src / "pulmonary"
    fake_datasets.montgomery(chest / "Montgomery" / "MontgomerySet")
    fake_datasets.montgomery(chest / "ChinaSet_AllFiles" / "ChinaSet_AllFiles", n=2)
    with KaggleServer() as server:
        server.add_competition(COMPETITION, files, whole)
        server.add_dataset(MB_SLUG, fake_datasets.zip_tree(buildings))
        server.add_dataset(MC_SLUG, fake_datasets.zip_tree(chest))
        server.sources = {"carvana": car, "buildings": buildings, "chest": chest}
        yield server


def download(server: KaggleServer, work: Path, *args: str, credentials="kaggle.json", **kw):
    env = server.env(work / "home", credentials=credentials, **kw)
    return run_unet(
        "download", f"paths.data_dir={work / 'data'}", *args, cwd=work, check=False, env=env
    )


def same_tree(published: Path, fetched: Path, folders: list[str]) -> None:
    for folder in folders:
        files = sorted(p for p in (published / folder).rglob("*") if p.is_file())
        assert files, folder
        for path in files:
            copy = fetched / path.relative_to(published)
            assert copy.read_bytes() == path.read_bytes(), copy


def assert_nothing_unpacked(root: Path) -> None:
    assert [p.name for p in root.iterdir()] == [".unet-download"] if root.exists() else True
    assert not list((root / ".unet-download").glob("staging-*")) if root.exists() else True


# --- fetched through the real client -------------------------------------------------
@pytest.mark.slow
def test_competition_download_then_skip_then_force(kaggle, tmp_path, capsys):
    root = tmp_path / "data" / "carvana"
    root.mkdir(parents=True)
    (root / "my_notes.txt").write_text("mine")
    kaggle.clear_requests()
    proc = download(kaggle, tmp_path, "dataset=carvana")
    assert proc.returncode == 0, proc.stderr
    assert "downloaded, unpacked and checked" in proc.stdout
    assert "labelled 20 (published 5088), test 3 (published 100064)" in proc.stdout
    asked = [r.body.get("fileName") for r in kaggle.requests("DownloadDataFile")]
    assert asked == ["train.zip", "train_masks.zip", "test.zip", "sample_submission.csv"]
    same_tree(kaggle.sources["carvana"], root, ["train", "train_masks", "test"])
    assert (root / "sample_submission.csv").read_bytes() == (
        kaggle.sources["carvana"] / "sample_submission.csv"
    ).read_bytes()
    work = root / ".unet-download"
    assert sorted(p.name for p in work.iterdir()) == ["manifest.json"]  # archives removed
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["entries"] == ["sample_submission.csv", "test", "train", "train_masks"]

    kaggle.clear_requests()
    again = download(kaggle, tmp_path, "dataset=carvana")
    assert again.returncode == 0 and "already downloaded" in again.stdout
    assert kaggle.requests("/api/") == [] and kaggle.requests("/blobs/") == []

    (root / "train" / "000abcdef000_01.jpg").write_bytes(b"damaged")
    forced = download(kaggle, tmp_path, "dataset=carvana", "download.force=true")
    assert forced.returncode == 0, forced.stderr
    assert len(kaggle.requests("DownloadDataFile")) == 4
    same_tree(kaggle.sources["carvana"], root, ["train"])  # the damaged file is whole again
    assert (root / "my_notes.txt").read_text() == "mine"

    # ... and training (in-process) trains on what was fetched.
    run_command("train", [
        "dataset=carvana", f"paths.data_dir={tmp_path / 'data'}", "dataset.image_size=[32,48]",
        "model.widths=[4,8]", "trainer.epochs=1", "trainer.max_steps_per_epoch=1",
        "trainer.batch_size=4", "trainer.progress=false", "hardware.num_workers=0",
    ], tmp_path / "train")  # fmt: skip
    assert "train: 16 images, validation: 4 images" in capsys.readouterr().out


@pytest.mark.slow
def test_dataset_downloads_unpack_what_the_layout_needs(kaggle, tmp_path):
    proc = download(kaggle, tmp_path, "dataset=massachusetts_buildings")
    assert proc.returncode == 0, proc.stderr
    assert "train 3 (published 137), val 1 (published 4), test 1 (published 10)" in proc.stdout
    root = tmp_path / "data" / "massachusetts_buildings"
    same_tree(kaggle.sources["buildings"], root, ["png", "tiff"])
    assert (root / "label_class_dict.csv").is_file()

    proc = download(kaggle, tmp_path, "dataset=montgomery")
    assert proc.returncode == 0, proc.stderr
    assert "images 10 (published 138)" in proc.stdout
    root = tmp_path / "data" / "montgomery"
    same_tree(kaggle.sources["chest"], root, ["Montgomery"])
    assert not (root / "ChinaSet_AllFiles").exists()  # the include patterns left it packed
    requested = kaggle.requests("DownloadDataset")[-1].body
    assert requested["ownerSlug"] == "kmader"
    assert requested["datasetSlug"] == "pulmonary-chest-xray-abnormalities"


@pytest.mark.slow
def test_whole_competition_archive_when_one_file_downloads_are_refused(kaggle, tmp_path):
    kaggle.state.per_file_endpoint = False
    try:
        proc = download(kaggle, tmp_path, "dataset=carvana")
    finally:
        kaggle.state.per_file_endpoint = True
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "data" / "carvana"
    same_tree(kaggle.sources["carvana"], root, ["train", "train_masks", "test"])
    # Only the configured files were unpacked out of the nested archive.
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "sample_submission.csv", "test", "train", "train_masks",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_later_file_kaggle_lacks_is_reported_not_fatal(kaggle, tmp_path):
    files = "dataset.kaggle.files=[train.zip,train_masks.zip,nothere.zip]"
    proc = download(kaggle, tmp_path, "dataset=carvana", files)
    assert proc.returncode == 0, proc.stderr
    assert "competition carvana-image-masking-challenge has no file nothere.zip" in proc.stdout
    assert "without nothere.zip" in proc.stdout and "labelled 20" in proc.stdout


# --- failures ------------------------------------------------------------------------
@pytest.mark.slow
def test_missing_credentials_name_where_they_are_read(kaggle, tmp_path):
    proc = download(kaggle, tmp_path, "dataset=carvana", credentials="none")
    assert proc.returncode == 1
    text = " ".join(proc.stderr.split())
    home = tmp_path / "home" / ".kaggle"
    for needle in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", str(home / "kaggle.json"),
                   "https://www.kaggle.com/settings", "Create New Token"):  # fmt: skip
        assert needle in text, needle
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_rejected_credentials_401(kaggle, tmp_path):
    proc = download(kaggle, tmp_path, "dataset=carvana", key="wrong-key")
    assert proc.returncode == 1
    text = " ".join(proc.stderr.split())
    assert "Kaggle answered 401" in text and "credentials were rejected" in text
    assert "kaggle.json" in text


@pytest.mark.slow
def test_access_token_is_accepted(kaggle, tmp_path):
    proc = download(kaggle, tmp_path, "dataset=montgomery", credentials="token")
    assert proc.returncode == 0, proc.stderr
    assert any(r.headers.get("Authorization", "").startswith("Bearer ") for r in kaggle.requests(
        "DownloadDataset"))  # fmt: skip


@pytest.mark.slow
def test_rules_not_accepted_403_gives_the_rules_url(kaggle, tmp_path):
    kaggle.state.rules_not_accepted.add(COMPETITION)
    try:
        proc = download(kaggle, tmp_path, "dataset=carvana")
    finally:
        kaggle.state.rules_not_accepted.clear()
    assert proc.returncode == 1
    text = " ".join(proc.stderr.split())
    assert "Kaggle answered 403" in text and "accept the rules" in text
    assert f"https://www.kaggle.com/competitions/{COMPETITION}/rules" in text
    assert_nothing_unpacked(tmp_path / "data" / "carvana")


@pytest.mark.slow
def test_unknown_dataset_404(kaggle, tmp_path):
    proc = download(
        kaggle, tmp_path, "dataset=massachusetts_buildings", "dataset.kaggle.dataset=nobody/nothing"
    )
    assert proc.returncode == 1
    assert "no dataset nobody/nothing on Kaggle" in " ".join(proc.stderr.split())


@pytest.mark.slow
def test_cut_transfer_is_never_unpacked_and_resumes(kaggle, tmp_path):
    kaggle.cut_next("train.zip", CUT_AT)
    proc = download(kaggle, tmp_path, "dataset=carvana", "download.retries=0")
    assert proc.returncode == 1
    text = " ".join(proc.stderr.split())
    assert "was cut" in text and "Nothing was unpacked" in text
    root = tmp_path / "data" / "carvana"
    partial = root / ".unet-download" / "archives" / "train_zip" / "train.zip"
    assert partial.is_file() and 0 < partial.stat().st_size < CUT_AT
    assert str(partial) in text
    assert_nothing_unpacked(root)
    with pytest.raises(UnetError, match="no images found"):  # training refuses it (in-process)
        run_command("train", ["dataset=carvana", f"paths.data_dir={tmp_path / 'data'}"],
                    tmp_path / "train")  # fmt: skip

    kaggle.clear_requests()
    have = partial.stat().st_size
    resumed = download(kaggle, tmp_path, "dataset=carvana")
    assert resumed.returncode == 0, resumed.stderr
    ranges = [r.headers.get("Range") for r in kaggle.requests("train.zip")]
    assert f"bytes={have}-" in ranges
    same_tree(kaggle.sources["carvana"], root, ["train"])


@pytest.mark.slow
def test_ctrl_c_during_a_transfer_leaves_nothing_to_train_on(kaggle, tmp_path):
    import subprocess

    kaggle.clear_requests()
    kaggle.state.stalls["train.zip"] = 30.0
    kaggle.state.stalling.clear()
    proc = None
    try:
        proc = subprocess.Popen(
            [*unet_command(), "download", "dataset=carvana", f"paths.data_dir={tmp_path / 'data'}"],
            cwd=tmp_path, env=kaggle.env(tmp_path / "home"), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible,
        )  # fmt: skip
        # The server has sent part of train.zip and holds the rest: the client is inside it.
        assert kaggle.state.stalling.wait(120), "the transfer of train.zip never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        kaggle.state.stalls.clear()
        if proc is not None and proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    text = " ".join(err.split())
    assert "interrupted" in text and "resumes it" in text and "Traceback" not in text
    assert_nothing_unpacked(tmp_path / "data" / "carvana")


@pytest.mark.slow
def test_full_disk_is_reported_with_the_path(kaggle, tmp_path):
    """A file-size limit makes writes fail as on a full disk (EFBIG rather than ENOSPC)."""

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (CUT_AT, CUT_AT))

    import subprocess

    env = kaggle.env(tmp_path / "home")
    proc = subprocess.run(
        [*unet_command(), "download", "dataset=carvana", f"paths.data_dir={tmp_path / 'data'}",
         "download.retries=0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        preexec_fn=limit_file_size,
    )  # fmt: skip
    assert proc.returncode == 1
    text = " ".join(proc.stderr.split())
    assert "the disk is full (or a size quota was hit) while writing" in text
    assert str(tmp_path / "data" / "carvana" / ".unet-download") in text
    assert_nothing_unpacked(tmp_path / "data" / "carvana")


@pytest.mark.slow
def test_files_the_user_put_in_root_are_never_replaced(kaggle, tmp_path):
    mine = tmp_path / "data" / "carvana" / "train"
    mine.mkdir(parents=True)
    (mine / "my_car_01.jpg").write_bytes(b"my own file")
    proc = download(kaggle, tmp_path, "dataset=carvana", "download.force=true")
    assert proc.returncode == 1
    assert "already holds train, which unet download did not put there" in " ".join(
        proc.stderr.split()
    )
    assert [p.name for p in mine.iterdir()] == ["my_car_01.jpg"]
    assert (mine / "my_car_01.jpg").read_bytes() == b"my own file"
    assert not (tmp_path / "data" / "carvana" / "train_masks").exists()  # nothing moved in


# --- the parts, in process -------------------------------------------------------------
def test_interrupted_move_makes_the_dataset_refused(tmp_path):
    root = fake_datasets.carvana(tmp_path / "carvana")
    (root / ".unet-download").mkdir()
    (root / ".unet-download" / "moving.json").write_text('{"entries": ["train"]}')
    with pytest.raises(UnetError, match="stopped while moving files into place"):
        CarvanaLayout(root).prepare()


def test_nested_zips_unpack_into_place(tmp_path):
    inner = fake_datasets.zip_members({"train/a_01.jpg": b"jpg", "train/b_01.jpg": b"jpg2"})
    middle = fake_datasets.zip_members({"train.zip": inner, "notes.csv": b"x"})
    outer = tmp_path / "all.zip"
    outer.write_bytes(fake_datasets.zip_members({"data/part.zip": middle}))
    unpack(outer, tmp_path / "staging")
    found = sorted(p.relative_to(tmp_path / "staging").as_posix()
                   for p in (tmp_path / "staging").rglob("*") if p.is_file())  # fmt: skip
    assert found == ["data/notes.csv", "data/train/a_01.jpg", "data/train/b_01.jpg"]


def test_include_patterns_and_zips_of_bare_images(tmp_path):
    archive = tmp_path / "d.zip"
    archive.write_bytes(
        fake_datasets.zip_members({"A/Montgomery/x.png": b"1", "B/China/y.png": b"2"})
    )
    unpack(archive, tmp_path / "s1", include=["*Montgomery*"])
    assert [p.name for p in (tmp_path / "s1").rglob("*.png")] == ["x.png"]
    unpack(archive, tmp_path / "s2", include=["*Shenzhen*"])  # matches nothing: all of it
    assert len(list((tmp_path / "s2").rglob("*.png"))) == 2
    bare = tmp_path / "train.zip"
    bare.write_bytes(fake_datasets.zip_members({"a_01.jpg": b"1", "a_02.jpg": b"2"}))
    unpack(bare, tmp_path / "s3")
    assert sorted(p.name for p in (tmp_path / "s3" / "train").iterdir()) == ["a_01.jpg", "a_02.jpg"]


def test_truncated_or_damaged_archives_are_refused(tmp_path):
    data = fake_datasets.zip_members({"train/a.jpg": os.urandom(5000)})
    cut = tmp_path / "train.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnetError, match="train.zip .* is not a complete zip archive"):
        unpack(cut, tmp_path / "s")
    damaged = bytearray(data)
    damaged[100:110] = b"0123456789"  # inside the member's data: its CRC no longer matches
    cut.write_bytes(bytes(damaged))
    with pytest.raises(UnetError, match="not a complete zip archive .*CRC"):
        unpack(cut, tmp_path / "s")
    assert not list((tmp_path / "s").rglob("*.zip"))


def test_credentials_are_found_where_the_client_reads_them(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_credentials() is None
    xdg = tmp_path / "xdg" / "kaggle"  # no ~/.kaggle: the client reads the XDG folder
    xdg.mkdir(parents=True)
    (xdg / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert str(xdg / "kaggle.json") in find_credentials()
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t")
    assert "KAGGLE_API_TOKEN" in find_credentials()


@pytest.mark.slow
def test_folder_dataset_has_nothing_to_download(tmp_path):
    proc = run_unet("download", "dataset=folder", f"dataset.root={tmp_path / 'mine'}", cwd=tmp_path)
    assert "nothing to download" in proc.stdout
    assert not (tmp_path / "mine").exists()
