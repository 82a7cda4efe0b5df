"""The `unet` entry point: command dispatch, help, errors, completion, composed configs.

Dispatch and usage run in-process (`unetcli.cli.main`); what only the real
process shows (Hydra's help and error output, exit statuses, shell completion,
`python -m unetcli`) runs `unet` in a subprocess and is marked slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.helpers import CONF, REPO, compose, run_command, run_unet
from unetcli.cli import COMMANDS, main, split_command


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


def test_help_lists_every_command_and_exits_0(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    listed = re.findall(r"^  ([\w-]+)  ", capsys.readouterr().out, flags=re.MULTILINE)
    assert listed == list(COMMANDS)


def test_no_command_prints_usage_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["trainer.epochs=1"])
    assert stop.value.code == 2 and "usage: unet <command>" in capsys.readouterr().out


def test_unknown_command_prints_usage_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["trian"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "unknown command 'trian'" in err and "usage: unet <command>" in err


def test_download_generates_the_synthetic_set_once(tmp_path, capsys):
    args = [
        f"paths.data_dir={tmp_path / 'data'}",
        "dataset.layout.num_objects=3",
        "dataset.layout.num_test=2",
        "dataset.layout.height=24",
        "dataset.layout.width=32",
    ]
    assert run_command("download", args, tmp_path / "run1") == "generated"
    assert (tmp_path / "data" / "synthetic" / "train_masks").is_dir()
    assert run_command("download", args, tmp_path / "run2") == "already present, nothing to do"
    assert "already present" in capsys.readouterr().out


# --- the real process ---------------------------------------------------------------------


def help_sections(text: str) -> dict[str, str]:
    """Hydra's help split at its `== Title ==` lines: {title: the text below it}."""
    parts = re.split(r"^== (.+) ==$", text, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2])}


def listed_groups(section: str) -> dict[str, list[str]]:
    """`group: a, b, c` lines of the Config groups section as {group: [options]}."""
    found = re.findall(r"^(\w+): (.+)$", section, flags=re.MULTILINE)
    return {group: [o.strip() for o in options.split(",")] for group, options in found}


def config_groups() -> dict[str, list[str]]:
    """Every config group folder of conf/ with its options (the YAML file names)."""
    return {
        folder.name: sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(CONF.iterdir())
        if folder.is_dir()
    }


@pytest.mark.slow
def test_unknown_command_exits_2_from_the_console_script(workdir):
    proc = run_unet("trian", cwd=workdir, check=False)
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr and "train" in proc.stderr


@pytest.mark.slow
def test_command_help_lists_its_config_groups_and_options(workdir):
    sections = help_sections(run_unet("train", "--help", cwd=workdir).stdout)
    assert list(sections) == ["Config groups", "Config"]
    groups = listed_groups(sections["Config groups"])
    assert groups == config_groups()
    for group in ("model", "dataset", "loss", "optimizer", "scheduler", "augmentation"):
        assert group in groups
    # The Config section is the composed config itself, not another list of groups.
    assert re.search(r"^trainer:\n  epochs: 20$", sections["Config"], flags=re.MULTILINE)
    assert "scheduler: cosine, " not in sections["Config"]

    text = run_unet("evaluate", "--help", cwd=workdir).stdout
    assert text.startswith("unet evaluate:")
    assert re.search(r"^checkpoint: \?\?\?$", help_sections(text)["Config"], flags=re.MULTILINE)


@pytest.mark.slow
def test_cfg_job_from_an_empty_folder_prints_public_keys(workdir):
    out = run_unet("train", "--cfg", "job", "model=unet", "trainer.epochs=3", cwd=workdir).stdout
    # The in-process helper composes exactly what the command runs with.
    printed = OmegaConf.to_container(OmegaConf.create(out))
    assert printed == OmegaConf.to_container(compose("train", ["model=unet", "trainer.epochs=3"]))
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


@pytest.mark.slow
def test_unknown_model_lists_the_available_ones(workdir):
    proc = run_unet("train", "model=nope", cwd=workdir, check=False)
    assert proc.returncode != 0
    assert "Could not find 'model/nope'" in proc.stderr
    assert "unet_small" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_missing_checkpoint_is_named(workdir):
    proc = run_unet("evaluate", "checkpoint=missing/best.pt", cwd=workdir, check=False)
    assert proc.returncode == 1
    assert "missing/best.pt does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_unet("predict", cwd=workdir, check=False)
    assert proc.returncode == 1 and "needs checkpoint=PATH" in proc.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_full_error_brings_the_traceback_back(workdir):
    proc = run_unet(
        "evaluate",
        "checkpoint=missing.pt",
        cwd=workdir,
        check=False,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr


@pytest.mark.slow
def test_shell_completion_goes_through_the_command(workdir):
    install = run_unet("train", "-sc", "install=bash", cwd=workdir).stdout
    assert "complete -o nospace -o default -F hydra_bash_completion unet" in install
    env = {"COMP_LINE": "unet train optimi", "COMP_POINT": "17"}
    out = run_unet("-sc", "query=bash", cwd=workdir, env=env).stdout
    assert "optimizer=" in out and "optimizer." in out
    env = {"COMP_LINE": "unet ev", "COMP_POINT": "7"}
    assert run_unet("-sc", "query=bash", cwd=workdir, env=env).stdout.split() == ["evaluate"]


@pytest.mark.slow
def test_python_dash_m_runs_the_same_entry_point(workdir):
    proc = subprocess.run(
        [sys.executable, "-m", "unetcli", "--help"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0 and "predict" in proc.stdout
