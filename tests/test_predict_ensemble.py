"""`unet predict ensemble=` (members averaged image by image) and `unet predict recipe=`.

One tiny checkpoint is trained in-process; a second, different one is made from it by changing
its weights, so the ensemble tests need a single second of training.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.helpers import compose, gzip_member_ends, run_command, run_unet, tiny_overrides
from unetcli.core.checkpoints import load_checkpoint, save_checkpoint
from unetcli.core.hardware import Runtime
from unetcli.datasets.io import read_image
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.errors import UnetError
from unetcli.inference.predictor import Predictor, load_predictor, sources_of
from unetcli.submission.rle import rle_decode

CPU = Runtime(torch.device("cpu"), None, False, 0, False)
# Small batches and gzip members, so that a cut inside the file falls between batches.
ARGS = [
    "predict.batch_size=2",
    "predict.rows_per_member=2",
    "predict.progress=false",
    "hardware.tune=false",
    "hardware.num_workers=0",
]


def _changed(state: dict, seed: int | None) -> dict:
    """The model with its output layer sharpened (two training steps leave every probability
    near 0.51; x60 spreads them over 0..1) and, given a seed, other weights."""
    generator = torch.Generator().manual_seed(seed or 0)
    weights = {}
    for key, value in state["model"].items():
        if seed is not None and value.is_floating_point() and "running" not in key:
            noise = torch.randn(value.shape, generator=generator) * 0.3
            value = value * (1 + noise) + 0.05 * noise
        weights[key] = value
    weights["outc.conv.weight"] = weights["outc.conv.weight"] * 60
    weights["outc.conv.bias"] = torch.zeros_like(weights["outc.conv.bias"])
    return {**state, "model": weights}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(working folder, checkpoint a, a different checkpoint b), as folds of a sweep folder."""
    root = tmp_path_factory.mktemp("ensemble")
    overrides = [*tiny_overrides(root, objects=6), "model.widths=[4,8]", "trainer.epochs=1"]
    run_command("train", [*overrides, "trainer.max_steps_per_epoch=2"], root / "train")
    trained = root / "train" / "checkpoints" / "last.pt"
    a = root / "sweep" / "0" / "checkpoints" / "best.pt"
    b = root / "sweep" / "1" / "checkpoints" / "best.pt"
    a.parent.mkdir(parents=True)
    b.parent.mkdir(parents=True)
    save_checkpoint(_changed(load_checkpoint(trained), seed=None), a)
    save_checkpoint(_changed(load_checkpoint(trained), seed=1), b)
    return root, a, b


def predict(out: Path, *overrides: str) -> Path:
    """Run `unet predict` in-process into `out`; the submission's path."""
    return run_command("predict", [*ARGS, f"predict.output_dir={out}", *overrides], out)


def rows(submission: Path) -> bytes:
    return gzip.decompress(submission.read_bytes())


def probability_pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_image(p, 1)[..., 0].astype(int) for p in sorted(folder.glob("*.png"))}


def test_two_copies_of_one_checkpoint_predict_what_it_predicts(checkpoints, tmp_path):
    _, a, _ = checkpoints
    copy = tmp_path / "copy.pt"
    shutil.copy(a, copy)
    keep = ["predict.tta=[hflip]", "predict.save_probabilities=true"]
    one = predict(tmp_path / "one", f"checkpoint={a}", *keep)
    two = predict(tmp_path / "two", f"ensemble=[{a},{copy}]", *keep)
    assert rows(two) == rows(one)
    single, pair = (
        probability_pngs(tmp_path / "one/probabilities"),
        probability_pngs(tmp_path / "two/probabilities"),
    )
    assert len(single) == 6 and single.keys() == pair.keys()
    assert all((single[k] == pair[k]).all() for k in single)


def test_an_ensemble_averages_its_members_probabilities(checkpoints):
    _, a, b = checkpoints
    cfg = compose("predict", [f"ensemble=[{a},{b}]", "predict.tta=[vflip]", "paths.run_dir=."])
    both = load_predictor(sources_of(cfg), cfg, "predict", CPU)
    images = torch.randn(3, 3, 48, 64)
    members = [Predictor((m,), both.options, CPU)(images) for m in both.members]
    assert (members[0] - members[1]).abs().max() > 0.01  # two different models
    averaged = both(images)
    torch.testing.assert_close(averaged, (members[0] + members[1]) / 2, atol=1e-6, rtol=1e-6)


def test_an_ensemble_of_a_sweep_folder_writes_the_mean_at_each_image_s_size(checkpoints, tmp_path):
    root, a, b = checkpoints
    keep = ["predict.save_probabilities=true"]
    for name, which in (("a", f"checkpoint={a}"), ("b", f"checkpoint={b}")):
        predict(tmp_path / name, which, *keep)
    submission = predict(tmp_path / "both", f"ensemble={root / 'sweep'}", *keep)
    pa, pb, both = (probability_pngs(tmp_path / n / "probabilities") for n in ("a", "b", "both"))
    for name in both:  # 8-bit copies: the mean of two rounded values is within one level
        assert np.abs(both[name] - (pa[name] + pb[name]) / 2).max() <= 1.0
    assert any((both[n] != pa[n]).any() for n in both)
    layout = SyntheticLayout(root / "data" / "synthetic")
    lines = rows(submission).decode().splitlines()[1:]
    assert len(lines) == 6
    for line, sample in zip(lines, layout.held_out_samples()):
        name, rle = line.split(",")
        height, width = read_image(sample.image).shape[:2]
        assert name == sample.name
        mask = rle_decode(rle, (height, width))  # refuses runs past the last pixel
        assert mask.shape == (height, width)


def test_an_interrupted_ensemble_predict_resumes_byte_identical(checkpoints, tmp_path, capsys):
    root, _, _ = checkpoints
    ensemble = f"ensemble={root / 'sweep'}"
    complete = predict(tmp_path / "complete", ensemble, "predict.tta=[hflip]").read_bytes()
    ends = gzip_member_ends(complete)
    assert len(ends) == 4  # the header, then three members of two rows
    folder = tmp_path / "interrupted"
    folder.mkdir()
    (folder / "submission.csv.gz.tmp").write_bytes(complete[: (ends[1] + ends[2]) // 2])
    with pytest.raises(UnetError, match="predict.resume=true"):
        predict(folder, ensemble, "predict.tta=[hflip]")
    capsys.readouterr()
    predict(folder, ensemble, "predict.tta=[hflip]", "predict.resume=true")
    assert "resuming after 2 complete rows" in capsys.readouterr().out
    assert (folder / "submission.csv.gz").read_bytes() == complete


def write_recipe(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_recipe_sets_threshold_objects_holes_and_tta(checkpoints, tmp_path, capsys):
    _, a, _ = checkpoints
    default = predict(tmp_path / "default", f"checkpoint={a}", "predict.save_probabilities=true")
    # A threshold inside the model's range of probabilities, so that it changes the masks.
    pngs = probability_pngs(tmp_path / "default" / "probabilities").values()
    threshold = round(float(np.quantile(np.concatenate([p.ravel() for p in pngs]), 0.6)) / 255, 3)
    choices = {"threshold": threshold, "min_object_size": 4, "fill_holes": True, "tta": ["hflip"]}
    recipe = write_recipe(tmp_path / "recipe.yaml", **choices, ensemble=True, member=None)
    capsys.readouterr()
    by_recipe = predict(tmp_path / "recipe", f"checkpoint={a}", f"recipe={recipe}")
    start = capsys.readouterr().out
    assert f"recipe {recipe}: threshold {threshold:g}, TTA hflip, objects >= 4 px" in start
    by_keys = predict(
        tmp_path / "keys",
        f"checkpoint={a}",
        f"predict.threshold={threshold}",
        "predict.min_object_size=4",
        "predict.fill_holes=true",
        "predict.tta=[hflip]",
    )
    assert rows(by_recipe) == rows(by_keys) != rows(default)


def test_a_recipe_that_chose_one_member_predicts_with_it_alone(checkpoints, tmp_path):
    root, a, b = checkpoints
    alone = write_recipe(tmp_path / "alone.yaml", threshold=0.5, ensemble=False, member=str(b))
    chosen = predict(tmp_path / "chosen", f"ensemble={root / 'sweep'}", f"recipe={alone}")
    assert rows(chosen) == rows(predict(tmp_path / "b", f"checkpoint={b}"))
    stranger = write_recipe(
        tmp_path / "stranger.yaml", threshold=0.5, ensemble=False, member=str(tmp_path / "c.pt")
    )
    with pytest.raises(UnetError, match=r"stranger.yaml chose member .*c.pt alone"):
        predict(tmp_path / "stranger", f"checkpoint={a}", f"recipe={stranger}")


def test_members_that_read_images_differently_are_refused(checkpoints, tmp_path):
    _, a, _ = checkpoints
    state = load_checkpoint(a)
    state["config"]["dataset"]["image_size"] = [32, 32]
    other = tmp_path / "other.pt"
    save_checkpoint(state, other)
    with pytest.raises(UnetError, match=r"read images differently: the evaluation transform"):
        predict(tmp_path / "out", f"ensemble=[{a},{other}]")
    with pytest.raises(UnetError, match=r"both checkpoint=.* and ensemble= are set"):
        predict(tmp_path / "out", f"ensemble=[{a},{other}]", f"checkpoint={a}")


@pytest.mark.slow
def test_a_bad_recipe_file_is_one_paragraph_naming_file_and_key(checkpoints, tmp_path):
    root, a, _ = checkpoints
    bad = write_recipe(tmp_path / "bad.yaml", threshold=0.5, min_object_size="big")
    proc = run_unet(
        "predict", f"checkpoint={a}", f"recipe={bad}", *ARGS, f"predict.output_dir={tmp_path}",
        cwd=root, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    paragraph = " ".join(proc.stderr.split())
    assert f"recipe file {bad}: min_object_size must be a whole number" in paragraph
    assert "Traceback" not in proc.stderr + proc.stdout
