"""The real `unet` command in subprocesses: train -> evaluate -> predict, and a sweep.

One tiny training run (a subprocess) is shared by the chain below. Where the
subprocess is not the point (scoring a submission, resuming training), the same
commands run in-process through `tests.helpers.run_command`.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import gzip_member_ends, only_run_dir, run_command, run_unet, tiny_overrides
from unetcli.config.overrides import quoted
from unetcli.core.drawing import class_colour
from unetcli.datasets.io import read_image
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.errors import UnetError
from unetcli.submission.rle import rle_decode

pytestmark = pytest.mark.slow

EPOCHS = 10  # of the shared tiny run (160 images): validation Dice rises from ~0.45 to ~0.6


def read_metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """One tiny training run shared by the tests below: (its working folder, run folder)."""
    root = tmp_path_factory.mktemp("e2e")
    args = [*tiny_overrides(root), f"trainer.epochs={EPOCHS}", "optimizer.lr=3e-3"]
    proc = run_unet("train", *args, cwd=root)
    assert "unet train: done" in proc.stdout and "best epoch" in proc.stdout
    return root, only_run_dir(root / "outputs" / "train")


def test_train_writes_every_output_and_dice_rises(trained):
    _, run = trained
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.csv", ".hydra/config.yaml"):
        assert (run / name).is_file(), name
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    dice = [float(r["val_dice"]) for r in rows]
    assert max(dice[1:]) > dice[0] + 0.15 and max(dice) > 0.45, f"Dice did not rise: {dice}"
    best = torch.load(run / "checkpoints/best.pt", weights_only=False)
    assert best["metrics"]["val/dice"] == pytest.approx(max(dice), abs=1e-5)
    assert best["config"]["trainer"]["epochs"] == EPOCHS


def test_tensorboard_holds_losses_metrics_and_image_grid(trained):
    _, run = trained
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for tag in ("train/loss", "val/loss", "val/dice", "val/iou", "lr"):
        assert tag in scalars, tag
    assert len(acc.Scalars("val/dice")) == EPOCHS
    assert len(acc.Scalars("train/loss")) > EPOCHS  # per step
    images = acc.Images("val/examples")
    assert len(images) == EPOCHS
    # Four validation rows of input | truth | prediction at 48x64 each.
    assert (images[0].height, images[0].width) == (4 * 48, 3 * 64)


def test_evaluate_reproduces_the_best_validation_dice(trained):
    root, run = trained
    proc = run_unet(
        "evaluate",
        f"checkpoint={run}/checkpoints/best.pt",
        f"paths.output_root={root / 'outputs'}",
        "evaluate.progress=false",
        "evaluate.worst=3",
        cwd=root,
    )
    assert "mean dice" in proc.stdout and "best threshold" in proc.stdout
    out = only_run_dir(root / "outputs" / "evaluate")
    report = json.loads((out / "metrics.json").read_text())
    best = max(float(r["val_dice"]) for r in read_metrics(run))
    # Training validates at the model's size; here that is the images' own size.
    assert report["metrics"]["dice"] == pytest.approx(best, abs=0.005)
    assert report["carvana_mean_dice"] == report["metrics"]["dice"]
    with (out / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["images"] and {"image", "dice", "iou"} <= set(rows[0])
    assert np.mean([float(r["dice"]) for r in rows]) == pytest.approx(report["metrics"]["dice"])

    # The sweep: one row per threshold 0.1..0.9; its best is at least the 0.5 score.
    sweep = report["threshold_sweep"]
    assert [r["threshold"] for r in sweep][0] == 0.1 and sweep[-1]["threshold"] == 0.9
    at_half = next(r["dice"] for r in sweep if r["threshold"] == 0.5)
    assert at_half == pytest.approx(report["metrics"]["dice"], abs=1e-6)
    chosen = json.loads((out / "threshold.json").read_text())
    assert chosen["threshold"] == report["best_threshold"]["threshold"]
    assert chosen["dice"] == max(r["dice"] for r in sweep) >= at_half

    # Pictures: three gallery rows (48-px images enlarged to 144), a histogram.
    gallery = read_image(out / "worst.png")
    assert gallery.shape[0] > 3 * 144 and gallery.shape[1] >= 4 * 192
    assert read_image(out / "dice_histogram.png").shape == (420, 720, 3)
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Scalars("eval/dice")[0].value == pytest.approx(report["metrics"]["dice"])
    assert len(acc.Scalars("sweep/dice")) == len(sweep)
    assert {"eval/worst", "eval/dice_histogram"} <= set(acc.Tags()["images"])
    worst = acc.Images("eval/worst")[0]
    assert (worst.height, worst.width) == gallery.shape[:2]


def test_evaluate_scores_objects_generated_afresh_at_another_generator_seed(trained):
    """The held-out comparison of docs/benchmarks.md: `dataset.root` and the layout's
    generator keys give a synthetic set the model never saw, scored like any other."""
    root, run = trained
    fresh = root / "fresh"
    proc = run_unet(
        "evaluate",
        f"checkpoint={run}/checkpoints/best.pt",
        f"paths.output_root={root / 'outputs-fresh'}",
        "evaluate.progress=false",
        "evaluate.split=test",
        "evaluate.sweep=false",
        f"dataset.root={fresh}",
        "+dataset.layout.seed=7",
        "+dataset.layout.num_test=10",
        cwd=root,
    )
    assert "mean dice" in proc.stdout
    manifest = json.loads((fresh / "synthetic.json").read_text())
    assert (manifest["seed"], manifest["num_test"]) == (7, 10)
    out = only_run_dir(root / "outputs-fresh" / "evaluate")
    assert json.loads((out / "metrics.json").read_text())["images"] == 10
    seen = {p.name for p in (root / "data" / "synthetic" / "test").iterdir()}
    assert not seen & {p.name for p in (fresh / "test").iterdir()}


PREDICT_ARGS = ["predict.batch_size=2", "predict.rows_per_member=2", "predict.tta=[hflip,vflip]"]
#: One setting for runs whose pixels are compared across commands.
FORCED = ["hardware.precision=fp32", "hardware.channels_last=false"]


@pytest.fixture(scope="module")
def predicted(trained) -> Path:
    """One `unet predict` run of the trained model, with every optional output."""
    root, run = trained
    run_unet(
        "predict",
        f"checkpoint={run}/checkpoints/best.pt",
        f"paths.output_root={root / 'outputs'}",
        "predict.progress=false",
        "predict.save_masks=true",
        "predict.save_probabilities=true",
        "predict.save_overlays=true",
        *PREDICT_ARGS,
        *FORCED,
        cwd=root,
    )
    return only_run_dir(root / "outputs" / "predict")


def test_predict_writes_a_submission_that_decodes_to_each_image(trained, predicted):
    root, run = trained
    out = predicted
    with gzip.open(out / "submission.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    assert not (out / "submission.csv.gz.tmp").exists()
    layout = SyntheticLayout(root / "data" / "synthetic")
    tests = layout.held_out_samples()
    assert [r["img"] for r in rows] == [s.name for s in tests]  # sample_submission order

    def dice_of(pred, truth):
        return 2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1)

    dice, transposed = [], []
    for row, sample in zip(rows, tests):
        truth = layout.read_mask(sample.mask)
        image = read_image(sample.image)
        pred = rle_decode(row["rle_mask"], truth.shape)
        assert pred.shape == image.shape[:2]
        saved = np.asarray(read_image(out / "masks" / f"{sample.image.stem}.png", 1))[..., 0] > 0
        assert (saved == pred.astype(bool)).all()
        prob = read_image(out / "probabilities" / f"{sample.image.stem}.png", 1)[..., 0]
        assert ((prob > 127) == pred.astype(bool)).mean() > 0.99  # 8-bit copy of the same map
        overlay = read_image(out / "overlays" / f"{sample.image.stem}.png")
        assert overlay.shape == image.shape
        # Predicted (solid) and true (dashed) outlines, both in class 1's colour.
        outline = (overlay == np.asarray(class_colour(1), np.uint8)).all(-1)
        assert outline.any()
        dice.append(dice_of(pred, truth))
        # The same runs read column-major: what a wrong pixel order would score.
        transposed.append(dice_of(rle_decode(row["rle_mask"], truth.shape[::-1]).T, truth))
    best_val = max(float(r["val_dice"]) for r in read_metrics(run))
    assert np.mean(dice) > 0.6 * best_val, f"test Dice {dice} far below validation {best_val}"
    assert np.mean(dice) > np.mean(transposed) + 0.05


def test_a_resumed_submission_equals_the_uninterrupted_one(trained, predicted, tmp_path):
    root, run = trained
    complete = (predicted / "submission.csv.gz").read_bytes()
    ends = gzip_member_ends(complete)
    assert len(ends) == 4  # the header, then three members of two rows
    # A kill leaves a prefix of the bytes: cut inside the member of rows 3 and 4.
    cut = (ends[1] + ends[2]) // 2
    folder = tmp_path / "interrupted"
    folder.mkdir()
    (folder / "submission.csv.gz.tmp").write_bytes(complete[:cut])
    checkpoint = f"checkpoint={run}/checkpoints/best.pt"
    with pytest.raises(UnetError, match="predict.resume=true"):  # in-process: the refusal
        run_command("predict", [checkpoint, f"predict.output_dir={folder}", *PREDICT_ARGS], folder)
    proc = run_unet(
        "predict",
        f"checkpoint={run}/checkpoints/best.pt",
        f"predict.output_dir={folder}",
        "predict.resume=true",
        "predict.progress=false",
        *PREDICT_ARGS,
        *FORCED,
        cwd=root,
    )
    assert "resuming after 2 complete rows" in proc.stdout
    assert not (folder / "submission.csv.gz.tmp").exists()
    assert gzip.decompress((folder / "submission.csv.gz").read_bytes()) == gzip.decompress(complete)
    assert (folder / ".hydra" / "config.yaml").is_file()  # the run wrote into that folder


def per_image_dice(run: Path) -> dict[str, float]:
    with (run / "per_image.csv").open() as f:
        return {r["image"]: float(r["dice"]) for r in csv.DictReader(f)}


NAMES = ("model", "submission")


def test_scoring_the_submission_gives_the_model_s_own_dice(trained, predicted, tmp_path):
    """`unet score` of predict's submission equals `unet evaluate` of the model on the same
    images at the same settings (both forced to one precision: the verdict must not depend
    on which setting a tuner measured fastest under the machine's load)."""
    root, run = trained
    masks = root / "data" / "synthetic" / "test_masks"
    run_command(
        "evaluate",
        [f"checkpoint={run}/checkpoints/best.pt", "evaluate.split=test",
         "evaluate.tta=[hflip,vflip]", "evaluate.progress=false", *FORCED],
        tmp_path / "model",
    )  # fmt: skip
    run_command(
        "score",
        [f"submission={predicted / 'submission.csv.gz'}", f"masks={masks}",
         f"images={root / 'data' / 'synthetic' / 'test'}"],
        tmp_path / "submission",
    )  # fmt: skip
    model, sub = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in NAMES)
    assert len(per_image_dice(tmp_path / "submission")) == 6
    assert per_image_dice(tmp_path / "submission") == pytest.approx(
        per_image_dice(tmp_path / "model"), abs=1e-6
    )
    assert sub["metrics"]["dice"] == pytest.approx(model["metrics"]["dice"], abs=1e-6)
    assert sub["rows_without_mask"] == 0 and sub["masks_without_row"] == 0
    assert (tmp_path / "submission" / "worst.png").is_file()


def test_unet_score_takes_the_submission_as_its_argument(trained, predicted, tmp_path, capsys):
    """`unet score SUBMISSION masks=DIR`, a path with a space and a comma in it; and the
    older `unet evaluate evaluate.submission=` runs the same scoring and says so."""
    root, _ = trained
    masks = root / "data" / "synthetic" / "test_masks"
    odd = tmp_path / "my sub, final.csv.gz"
    odd.write_bytes((predicted / "submission.csv.gz").read_bytes())
    proc = run_unet("score", str(odd), f"masks={masks}", "hydra.run.dir=scored", cwd=tmp_path)
    assert "unet score: submission scored" in proc.stdout
    old = run_command(
        "evaluate", [f"evaluate.submission={quoted(str(odd))}", f"evaluate.masks={masks}"],
        tmp_path / "old",
    )
    assert per_image_dice(tmp_path / "scored") == per_image_dice(tmp_path / "old")
    assert old["submission"] == str(odd)
    assert "`unet score " in capsys.readouterr().out


# --- resuming training, in-process --------------------------------------------------------


def last_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)


def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    """Two epochs, then a resume to four, end where four uninterrupted epochs end.

    One full batch per epoch and no augmentation, so neither the loader's order nor
    the random draws matter. Adam's moments shape every step and a step schedule
    lowers the rate after epoch 3 (counted from the start of the run), so a resume
    that lost the optimizer, the schedule or the counters ends elsewhere.
    """
    common = [
        *tiny_overrides(tmp_path, objects=6),
        "trainer.batch_size=16",
        "trainer.log_images=0",
        "augmentation=none",
        "optimizer=adam",
        "optimizer.lr=1e-2",
        "scheduler=step",
        "scheduler.factory.step_size=3",
        "hardware=cpu",
        "hardware.precision=fp32",
    ]
    run_command("train", [*common, "trainer.epochs=4"], tmp_path / "whole")
    run_command("train", [*common, "trainer.epochs=2"], tmp_path / "first")
    first = last_state(tmp_path / "first")
    result = run_command(
        "train",
        [*common, "trainer.epochs=4", f"trainer.resume={tmp_path / 'first/checkpoints/last.pt'}"],
        tmp_path / "resumed",
    )
    assert result["epochs"] == 4
    whole, resumed = last_state(tmp_path / "whole"), last_state(tmp_path / "resumed")
    rows = {name: read_metrics(tmp_path / name) for name in ("whole", "resumed")}
    assert [int(r["epoch"]) for r in rows["resumed"]] == [3, 4]
    lrs = {name: [float(r["lr"]) for r in rows[name][-2:]] for name in rows}
    assert lrs["whole"] == pytest.approx([1e-2, 1e-3])
    assert lrs["resumed"] == pytest.approx(lrs["whole"])
    assert resumed["scheduler"]["last_epoch"] == whole["scheduler"]["last_epoch"] == 4
    assert resumed["epoch"] == whole["epoch"] == 4
    assert resumed["global_step"] == whole["global_step"] == 4
    assert resumed["optimizer"]["state"][0]["step"] == whole["optimizer"]["state"][0]["step"]
    for name, weight in whole["model"].items():
        torch.testing.assert_close(resumed["model"][name], weight, rtol=1e-4, atol=1e-6)
    moved = [k for k, v in whole["model"].items() if not torch.equal(v, first["model"][k])]
    assert len(moved) == len(whole["model"])  # epochs 3 and 4 changed every tensor
    assert resumed["metrics"] == pytest.approx(whole["metrics"], abs=1e-4)


# --- a sweep ------------------------------------------------------------------------------


def test_multirun_writes_one_folder_per_job_and_a_summary(tmp_path):
    args = [
        "-m",
        "train",  # the command word after a Hydra flag (split_command's own tests cover orders)
        *tiny_overrides(tmp_path, objects=6),
        "optimizer.lr=1e-3,3e-4",
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=2",
    ]
    proc = run_unet(*args, cwd=tmp_path)
    sweep = only_run_dir(tmp_path / "outputs" / "train-multirun")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "best.pt").is_file()
    with (sweep / "summary.csv").open() as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}  # best job first
    assert sorted(rows) == ["0", "1"]
    assert "optimizer.lr=0.001" in rows["0"]["overrides"].split()
    assert "optimizer.lr=0.0003" in rows["1"]["overrides"].split()
    assert all(0 <= float(r["best_value"]) <= 1 for r in rows.values())
    assert "sweep summary" in proc.stdout
