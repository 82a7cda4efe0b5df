"""The `unet` entry point: command dispatch, help, errors, completion, composed configs."""

import os

import pytest

from tests.conftest import REPO, run_unet
from unetcli.cli import COMMANDS, split_command


@pytest.mark.parametrize(
    ("argv", "command", "rest"),
    [
        (["train", "a=1"], "train", ["a=1"]),
        (["-m", "train", "a=1,2"], "train", ["-m", "a=1,2"]),
        (["train", "-m", "a=1,2"], "train", ["-m", "a=1,2"]),
        (["-cn", "other", "evaluate"], "evaluate", ["-cn", "other"]),
        (["--config-dir", "my", "predict", "x=1"], "predict", ["--config-dir", "my", "x=1"]),
        (["a=1", "-m"], None, ["a=1", "-m"]),
    ],
)
def test_split_command_skips_flags_and_their_values(argv, command, rest):
    assert split_command(argv) == (command, rest)


def test_help_lists_every_command(workdir):
    out = run_unet("--help", cwd=workdir).stdout
    for name in COMMANDS:
        assert f"  {name} " in out


def test_unknown_command_prints_usage_and_exits_2(workdir):
    proc = run_unet("trian", cwd=workdir, check=False)
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr and "train" in proc.stderr


def test_command_help_shows_its_config_groups(workdir):
    out = run_unet("train", "--help", cwd=workdir).stdout
    assert "unet train:" in out
    for group in (
        "model:",
        "dataset:",
        "loss:",
        "optimizer:",
        "scheduler:",
        "augmentation:",
        "hardware:",
    ):
        assert group in out
    out = run_unet("evaluate", "--help", cwd=workdir).stdout
    assert "checkpoint: ???" in out


def test_cfg_job_from_an_empty_folder_prints_public_keys(workdir):
    out = run_unet("train", "--cfg", "job", cwd=workdir).stdout
    for key in (
        "epochs:",
        "batch_size:",
        "lr:",
        "seed:",
        "data_dir: data",
        "validation_size:",
        "resume:",
    ):
        assert key in out
    assert not any(workdir.iterdir()), "printing the config must not write anything"


def test_unknown_model_lists_the_available_ones(workdir):
    proc = run_unet("train", "model=nope", cwd=workdir, check=False)
    assert proc.returncode != 0
    assert "Could not find 'model/nope'" in proc.stderr
    assert "unet_small" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_checkpoint_is_named(workdir):
    proc = run_unet("evaluate", "checkpoint=missing/best.pt", cwd=workdir, check=False)
    assert proc.returncode == 1
    assert "missing/best.pt does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_unet("predict", cwd=workdir, check=False)
    assert proc.returncode == 1 and "needs checkpoint=PATH" in proc.stderr


def test_empty_dataset_folder_says_where_it_looked(workdir):
    (workdir / "data" / "mine").mkdir(parents=True)
    (workdir / "data" / "mine" / "synthetic.json").write_text("{}")
    proc = run_unet(
        "train",
        "dataset.root=data/mine",
        f"paths.output_root={workdir / 'outputs'}",
        cwd=workdir,
        check=False,
    )
    assert proc.returncode == 1
    assert "no images found in data/mine/train" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_full_error_brings_the_traceback_back(workdir):
    proc = run_unet(
        "evaluate",
        "checkpoint=missing.pt",
        cwd=workdir,
        check=False,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_shell_completion_goes_through_the_command(workdir):
    install = run_unet("train", "-sc", "install=bash", cwd=workdir).stdout
    assert "complete -o nospace -o default -F hydra_bash_completion unet" in install
    env = {"COMP_LINE": "unet train optimi", "COMP_POINT": "17"}
    out = run_unet("-sc", "query=bash", cwd=workdir, env=env).stdout
    assert "optimizer=" in out and "optimizer." in out
    env = {"COMP_LINE": "unet ev", "COMP_POINT": "7"}
    assert run_unet("-sc", "query=bash", cwd=workdir, env=env).stdout.split() == ["evaluate"]


def test_python_dash_m_runs_the_same_entry_point(workdir):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "unetcli", "--help"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0 and "predict" in proc.stdout


def test_download_generates_the_synthetic_set_once(workdir):
    args = ("download", "dataset.layout.num_objects=3", "dataset.layout.num_test=2")
    first = run_unet(*args, cwd=workdir).stdout
    assert "generated" in first
    assert (workdir / "data" / "synthetic" / "train_masks").is_dir()
    assert "already present" in run_unet(*args, cwd=workdir).stdout
