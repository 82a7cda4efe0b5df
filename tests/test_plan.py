"""`unet plan`: measured choices written as YAML that composes and trains, with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests import doctor_folders
from tests.helpers import compose, run_command
from unetcli.errors import UnetError
from unetcli.plan.search import CHECKPOINT_BYTES_PER_S


def _plan(tmp_path, root, *extra):
    args = [
        "dataset=folder",
        f"dataset.root={root}",
        f"plan.output_dir={tmp_path / 'myconf'}",
        "plan.steps=1",
        *extra,
    ]
    return run_command("plan", args, tmp_path / "plan")


def test_plan_yamls_compose_and_train_at_the_chosen_batch(tmp_path):
    root = doctor_folders.build(tmp_path / "cells", "suffix", n=10)
    plan = _plan(
        tmp_path,
        root,
        "plan.models=[unet_small]",
        "plan.batch_sizes=[1,2]",
        "plan.time_budget=1m",
        "dataset.validation_size=0.3",
    )
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"
    cfg = compose("train", [searchpath, f"experiment={plan['name']}"])
    assert cfg.dataset.layout.mask_suffix == "_mask"  # the doctor's fix, in the dataset YAML
    assert cfg.dataset.validation_size == 0.3  # the user's own setting, kept
    assert cfg.model.widths[0] == 16 and cfg.trainer.batch_size == plan["batch"]
    assert list(cfg.dataset.image_size) == plan["size"] and cfg.trainer.epochs == plan["epochs"]
    for path in plan["files"]:  # every choice carries its reason
        lines = [ln for ln in Path(path).read_text().splitlines() if ln and not ln.startswith("#")]
        assert all("# " in ln for ln in lines if ":" in ln and not ln.endswith(":")), path
    result = run_command(
        "train",
        [
            searchpath,
            f"experiment={plan['name']}",
            f"paths.output_root={tmp_path / 'out'}",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.progress=false",
            "trainer.log_images=0",
            "hardware.num_workers=0",
        ],
        tmp_path / "train",
    )
    assert result["epochs"] == 1


def test_the_first_model_that_trains_enough_epochs_is_chosen(tmp_path):
    """Whatever this machine measures, the plan follows its rule: the widest model that
    trains plan.min_epochs in the budget, else the one that trains most."""
    root = doctor_folders.build(tmp_path / "cells", "0-255", n=10)
    plan = _plan(
        tmp_path,
        root,
        "plan.models=[unet,unet_small]",
        "plan.batch_sizes=[1]",
        "plan.time_budget=1m",
    )
    saved = json.loads((tmp_path / "myconf" / f"{plan['name']}.plan.json").read_text())
    rates = {m["model"]: m["images_per_s"] for m in saved["measured"]}
    state = {m["model"]: m["state_bytes"] for m in saved["measured"]}
    # 8 training images, 15% for validation, a checkpoint per epoch and the start-up once;
    # plan.max_epochs (300) caps what a fast machine could train
    left = 60 - saved["start_up_s"]
    epochs = {
        m: min(300, int(left // (8 / r * 1.15 + state[m] / CHECKPOINT_BYTES_PER_S)))
        for m, r in rates.items()
    }
    enough = [m for m in ("unet", "unet_small") if epochs.get(m, 0) >= 30]
    expected = enough[0] if enough else max(epochs, key=epochs.get)
    assert plan["model"] == expected and plan["epochs"] == epochs[expected]
    if "unet_small" in rates:  # measured only when the 64-wide one did not suffice
        assert rates["unet"] < rates["unet_small"]
    experiment = (tmp_path / "myconf" / "experiment" / f"{plan['name']}.yaml").read_text()
    assert f"override /model: {expected}" in experiment


def test_objects_too_small_to_resize_get_crops_at_full_resolution(tmp_path):
    root = doctor_folders.build(tmp_path / "cells", "0-255", n=6)  # 40x32, objects >= 16 px
    plan = _plan(
        tmp_path,
        root,
        "plan.models=[unet_small]",
        "plan.batch_sizes=[2]",
        "plan.max_side=16",
        "plan.min_side=16",
        "plan.min_object_side=3",
    )
    assert plan["crop"] and plan["size"] == [16, 16]
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"
    cfg = compose("train", [searchpath, f"experiment={plan['name']}"])
    assert cfg.dataset.image_size is None and cfg.dataset.crop_size == 16
    result = run_command(
        "train",
        [
            searchpath,
            f"experiment={plan['name']}",
            f"paths.output_root={tmp_path / 'out'}",
            "trainer.epochs=1",
            "trainer.max_steps_per_epoch=1",
            "trainer.progress=false",
            "hardware.num_workers=0",
        ],
        tmp_path / "train",
    )
    assert result["epochs"] == 1


def test_time_budgets_and_refusals(tmp_path):
    root = doctor_folders.build(tmp_path / "cells", "0-1", n=4)
    with pytest.raises(UnetError, match="plan.time_budget='soon'.* duration"):
        _plan(tmp_path, root, "plan.time_budget=soon")
    (tmp_path / "myconf" / "dataset").mkdir(parents=True)
    (tmp_path / "myconf" / "dataset" / "cells.yaml").write_text("mine: true\n")
    with pytest.raises(UnetError, match="already exist"):
        _plan(tmp_path, root)
    assert yaml.safe_load((tmp_path / "myconf" / "dataset" / "cells.yaml").read_text()) == {
        "mine": True
    }
    import unetcli

    inside = f"plan.output_dir={unetcli.__path__[0]}/conf/mine"
    with pytest.raises(UnetError, match="inside the unetcli package"):
        run_command("plan", ["dataset=folder", f"dataset.root={root}", inside], tmp_path / "p")
