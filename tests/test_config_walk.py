"""Every leaf of the composed train, evaluate and predict configs, given a wrong type, a negative
number, an empty string and (for path keys) a missing file, is refused up front with one
paragraph naming the key, before any data or model is built.

The walk calls `check_config` (what each command runs first) on each mutated config, so the
hundreds of cases take about a second; `test_commands_check_before_building_anything` and the
subprocess test show the commands do run it first and print one paragraph without a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose, run_command, run_unet
from unetcli.config.schema import NEGATIVE_OK, PATH_KEYS, check_config, leaves, yaml_kinds
from unetcli.errors import UnetError

REPO_FILE = str(Path(__file__))
COMMANDS = {
    "train": ["paths.run_dir=run"],
    "evaluate": ["paths.run_dir=run", f"checkpoint={REPO_FILE}"],
    "predict": ["paths.run_dir=run", f"checkpoint={REPO_FILE}"],
}


def wrong_type(stated: set[str]) -> object | None:
    """A value of a kind the YAML never gives the key (None when the YAML states no kind)."""
    if not stated:
        return None
    candidates = [("str", "seven"), ("list", [1, 2]), ("float", 2.5), ("dict", {"a": 1})]
    return next((v for kind, v in candidates if kind not in stated), None)


def mutations(key: str, value: object) -> list[tuple[str, object]]:
    """(what, bad value) for one leaf, derived from the kinds its YAML gives it."""
    kinds = yaml_kinds().get(key, set())
    found = [] if "empty" in kinds else [("empty string", "")]
    wrong = wrong_type(kinds - {"none", "empty"})
    if wrong is not None:
        found.append(("wrong type", wrong))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in NEGATIVE_OK:
        found.append(("negative", -3))
    if key in PATH_KEYS:
        found.append(("missing file", "/nonexistent/unet/file.pt"))
    return found


def cases() -> list[tuple[str, str, str, object]]:
    out = []
    for command, overrides in COMMANDS.items():
        values = OmegaConf.to_container(compose(command, overrides), resolve=True)
        for key, value in leaves(values):
            out += [(command, key, what, bad) for what, bad in mutations(key, value)]
    return out


def test_the_default_configs_pass():
    for command, overrides in COMMANDS.items():
        check_config(compose(command, overrides))


def test_every_leaf_with_every_bad_value_is_refused_naming_the_key():
    composed = {c: compose(c, o) for c, o in COMMANDS.items()}
    all_cases = cases()
    assert len(all_cases) > 250  # every leaf of three commands, several values each
    assert {what for *_, what, _ in all_cases} == {
        "empty string",
        "wrong type",
        "negative",
        "missing file",
    }
    accepted = []
    for command, key, what, bad in all_cases:
        cfg = composed[command].copy()
        OmegaConf.update(cfg, key, bad, force_add=True)
        try:
            check_config(cfg)
            accepted.append(f"{command} {key}={bad!r} ({what})")
        except UnetError as err:
            message = str(err)
            assert f"config key {key}=" in message and "\n" not in message, message
    assert accepted == []


@pytest.mark.parametrize(
    "override, says",
    [
        ("dataset.validation_size=0.999", "0.0..0.5"),
        ("trainer.batch_size=0", "at least 1"),
        ("optimizer.lr=-0.1", "not be negative"),
        ("trainer.epochs=ten", "must be a int"),
    ],
)
def test_silently_accepted_values_are_refused(override, says):
    with pytest.raises(UnetError, match=says):
        check_config(compose("train", ["paths.run_dir=run", override]))


def test_thresholds_outside_0_1_are_refused():
    with pytest.raises(UnetError, match=r"predict.threshold=1.5 .* 0.0..1.0"):
        check_config(compose("predict", [*COMMANDS["predict"], "predict.threshold=1.5"]))
    with pytest.raises(UnetError, match=r"evaluate.thresholds="):
        check_config(compose("evaluate", [*COMMANDS["evaluate"], "evaluate.thresholds=[0.5,2]"]))


def test_commands_check_before_building_anything(tmp_path):
    for command in COMMANDS:
        overrides = [*COMMANDS[command][1:], f"paths.data_dir={tmp_path / 'data'}", "seed=-1"]
        with pytest.raises(UnetError, match="config key seed=-1"):
            run_command(command, overrides, tmp_path / command)
    assert not (tmp_path / "data").exists()  # no synthetic set was generated


@pytest.mark.slow
def test_the_cli_prints_one_paragraph_and_no_traceback(tmp_path):
    proc = run_unet("train", "trainer.batch_size=-8", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "config key trainer.batch_size=-8 is not valid" in " ".join(proc.stderr.split())
    assert not (tmp_path / "data").exists()


def test_a_batch_larger_than_the_dataset_trains_one_batch_and_says_so(tmp_path, capsys):
    """Decided: accepted (small datasets are real), but announced, since it is rarely meant."""
    from tests.helpers import tiny_overrides

    result = run_command("train", [
        *tiny_overrides(tmp_path, objects=3), "model.widths=[4,8]", "trainer.epochs=1",
        "trainer.batch_size=64",
    ], tmp_path / "run")  # fmt: skip
    assert result["epochs"] == 1
    out = capsys.readouterr().out
    assert "note: trainer.batch_size=64 is larger than the" in out
    assert "each epoch is one batch of" in out


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_auto_or_a_number_keys_take_a_number(command):
    """`auto` in the YAML must not make a number look like the wrong kind."""
    check_config(compose(command, [*COMMANDS[command], f"{command}.threads=1"]))
    check_config(
        compose("train", ["paths.run_dir=run", "hardware.threads=2", "hardware.num_workers=0"])
    )


def test_null_lifts_a_tuning_budget_limit():
    """The YAML says null lifts either limit (scripts/bench_train.py relies on it)."""
    check_config(compose("train", [
        "paths.run_dir=run", "hardware.tune_budget.share=null", "hardware.tune_budget.seconds=null",
    ]))  # fmt: skip
