"""Images as measurements: 16-bit and float TIFFs, N channels, one file per band.

Each set (tests/measurement_sets.py) goes the way a user's does: `unet doctor` recommends an
intensity mode, its options train, and the normalisation measured at training is the one
evaluate, predict, the exported graph and the torch-free runner apply.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import tifffile
import torch
from omegaconf import OmegaConf

from tests import measurement_sets
from tests.helpers import compose, run_command
from unetcli.core.checkpoints import load_checkpoint
from unetcli.core.images import read_image
from unetcli.core.normalisation import Normalisation
from unetcli.datasets.folder import FolderLayout
from unetcli.datasets.intensity import check_transforms, resolve_intensity
from unetcli.datasets.layouts import build_layout
from unetcli.doctor.findings import override
from unetcli.errors import UnetError
from unetcli.inference.options import inference_transform
from unetcli.inference.restore import rebuild_model
from unetcli.runner.__main__ import run as run_runner

TINY = [
    "dataset.image_size=null",
    "model.widths=[8,16]",
    "trainer.batch_size=4",
    "trainer.log_images=0",
    "trainer.progress=false",
    "hardware=cpu",
    "hardware.precision=fp32",
    "hardware.num_workers=0",
    "hardware.tune=false",
    "augmentation=flips",
    "dataset.validation_size=0.25",
    "optimizer.lr=0.01",
    "loss=bce",
]


def _doctor(tmp_path: Path, root: Path, *extra: str) -> dict:
    args = ["dataset=folder", f"dataset.root={root}", "dataset.image_size=null", *extra]
    return run_command("doctor", args, tmp_path / "doctor")


def _train(tmp_path: Path, name: str, root: Path, options: list[str], epochs: int) -> dict:
    base = ["dataset=folder", f"dataset.root={root}", f"paths.output_root={tmp_path / 'out'}"]
    return run_command(
        "train", [*base, *options, *TINY, f"trainer.epochs={epochs}"], tmp_path / name
    )


def _options(report: dict) -> list[str]:
    return [override(k, v) for k, v in report["options"].items()]


@pytest.mark.slow
def test_absolute_intensity_is_learnt_with_dataset_mode_and_lost_per_image(tmp_path):
    root = measurement_sets.bright_and_dim(tmp_path / "data")
    report = _doctor(tmp_path, root)
    assert report["options"]["dataset.in_channels"] == 2
    assert report["options"]["dataset.intensity.mode"] == "dataset"
    assert report["images"]["intensity"]["dtype"] == "uint16"
    learnt = _train(tmp_path, "dataset", root, _options(report), epochs=10)
    assert learnt["best_value"] >= 0.9
    stats = load_checkpoint(tmp_path / "dataset" / "checkpoints" / "best.pt")["config"]
    stored = stats["dataset"]["intensity"]
    assert stored["mode"] == "dataset" and stored["dtype"] == "uint16"
    # The second channel is the first at 4x the gain: its measured statistics are too.
    low, high = stored["statistics"]["low"], stored["statistics"]["high"]
    assert len(low) == 2 and high[1] == pytest.approx(4 * high[0], rel=0.02)
    stretched = [*_options(report), "dataset.intensity.mode=per_image"]
    lost = _train(tmp_path, "per_image", root, stretched, epochs=10)
    assert lost["best_value"] < 0.7  # bright and dim images look the same once stretched


@pytest.mark.slow
def test_five_bands_in_channel_folders_train_evaluate_predict_and_export(tmp_path):
    root = measurement_sets.five_bands(tmp_path / "data")
    folders = f"dataset.layout.channel_folders=[{','.join(measurement_sets.BANDS)}]"
    report = _doctor(tmp_path, root, folders)
    assert report["options"]["dataset.in_channels"] == 5
    assert report["options"]["dataset.intensity.mode"] == "dataset"
    _train(tmp_path, "train", root, [folders, *_options(report)], epochs=8)
    checkpoint = tmp_path / "train" / "checkpoints" / "best.pt"
    scores = run_command("evaluate", [f"checkpoint={checkpoint}", "hardware=cpu"], tmp_path / "ev")
    assert scores["metrics"]["dice"] > 0.5
    predict = [f"checkpoint={checkpoint}", "predict.progress=false", "hardware=cpu"]
    predict += ["hardware.precision=fp32", "hardware.num_workers=0"]
    submission = run_command("predict", predict, tmp_path / "predict")
    export = run_command("export", [f"checkpoint={checkpoint}"], tmp_path / "export")
    assert export["max_difference"] < export["tolerance"]  # predict and the graph agree
    info = json.loads((tmp_path / "export" / "inference.json").read_text())
    assert info["input"]["dtype"] == "uint16" and info["input"]["channels"] == 5
    assert info["input"]["channel_folders"] == measurement_sets.BANDS
    out = run_runner(Path(export["onnx"]), root / "test", tmp_path / "runner")
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(Path(submission).read_bytes())


@pytest.mark.slow
def test_ct_slices_in_float_read_with_the_fixed_range_the_doctor_prints(tmp_path):
    root = measurement_sets.ct_slices(tmp_path / "data")
    report = _doctor(tmp_path, root)
    options = report["options"]
    assert options["dataset.in_channels"] == 1
    assert options["dataset.intensity.mode"] == "fixed"
    ((low, high),) = options["dataset.intensity.range"]
    assert -1030 < low < -980 and 750 < high < 950  # air to bone, Hounsfield units
    result = _train(tmp_path, "train", root, _options(report), epochs=10)
    assert result["best_value"] >= 0.8
    _same_normalisation_in_training_evaluate_and_the_graph(tmp_path, root / "images")


def _same_normalisation_in_training_evaluate_and_the_graph(tmp_path: Path, images: Path) -> None:
    """One file through evaluate's transform and the network, and through the exported graph
    (float32 values in): the same model input, so the same probabilities to float tolerance."""
    checkpoint = tmp_path / "train" / "checkpoints" / "best.pt"
    state = load_checkpoint(checkpoint)
    trained = OmegaConf.create(state["config"])
    path = sorted(images.iterdir())[0]
    stored = tifffile.imread(path)[..., None]
    assert stored.dtype == np.float32
    model_input = inference_transform(trained, "full")(image=stored)["image"]
    ((low, high),), dataset = trained.dataset.intensity.range, trained.dataset
    stated = (np.clip(stored, low, high) - low) / (high - low)
    stated = (stated - dataset.mean[0]) / dataset.std[0]
    assert np.allclose(model_input, stated, atol=1e-5)  # the mapping the config states
    model = rebuild_model(trained.model, checkpoint)
    model.load_state_dict(state["model"])
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(model_input.transpose(2, 0, 1))[None])
    expected = torch.sigmoid(logits).numpy()
    export = run_command("export", [f"checkpoint={checkpoint}"], tmp_path / "export")
    graph = ort.InferenceSession(export["onnx"], providers=["CPUExecutionProvider"])
    assert graph.get_inputs()[0].type == "tensor(float)"
    got = graph.run(None, {"pixels": stored[None]})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_tiff_layouts_read_as_height_width_channels_in_a_kept_dtype(tmp_path):
    planes = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5) * 300
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="minisblack")
    tifffile.imwrite(tmp_path / "interleaved.tif", planes.transpose(1, 2, 0), planarconfig="contig")
    for page in planes:  # one page per channel
        tifffile.imwrite(tmp_path / "pages.tif", page, append=True)
    tifffile.imwrite(tmp_path / "hounsfield.tif", (planes[0].astype(np.int16) - 1000))
    for name in ("planar", "interleaved", "pages"):
        read = read_image(tmp_path / f"{name}.tif", 2)
        assert read.dtype == np.uint16 and np.array_equal(read, planes.transpose(1, 2, 0))
    signed = read_image(tmp_path / "hounsfield.tif", 1)
    assert signed.dtype == np.float32 and signed.min() == -1000  # exact, not wrapped
    with pytest.raises(UnetError, match="has 2 channel.*dataset.in_channels=2"):
        read_image(tmp_path / "planar.tif", 3)  # never guessed into RGB
    rgba = np.arange(6 * 5 * 4, dtype=np.uint16).reshape(6, 5, 4) * 500
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])  # OpenCV writes BGRA
    assert np.array_equal(read_image(tmp_path / "rgba.png", 4), rgba)  # 16-bit, RGBA order


def test_the_file_check_lists_images_whose_channels_or_dtype_disagree(tmp_path):
    root = measurement_sets.bright_and_dim(tmp_path / "data", count=6)
    one = np.zeros((32, 32), np.uint16)
    tifffile.imwrite(root / "images" / "c001.tif", one)  # one channel among two
    tifffile.imwrite(root / "images" / "c002.tif", np.zeros((2, 32, 32), np.uint8))
    layout = FolderLayout(root, channels=2)
    with pytest.raises(UnetError) as found:
        layout.check(layout.labelled_samples())
    message = str(found.value)
    assert "2 image(s) disagree in channels, dtype or size" in message
    assert "images/c001.tif has 1 channel(s)" in message
    assert "images/c002.tif is uint8, most images uint16" in message


@pytest.mark.parametrize(("channels", "dtype"), [(5, "uint8"), (3, "uint16")])
def test_colour_and_8_bit_transforms_are_refused_by_name(channels, dtype):
    carvana = compose("train", ["augmentation=carvana"]).augmentation
    with pytest.raises(UnetError, match="step HueSaturationValue assumes"):
        check_transforms(carvana, channels, dtype)
    check_transforms(carvana, 3, "uint8")  # photographs keep every step
    check_transforms(compose("train", ["augmentation=flips"]).augmentation, channels, dtype)


def test_only_the_announcing_process_prints_the_measured_statistics(tmp_path, capsys):
    """Every process of a run measures the same statistics; only the first says so."""
    root = measurement_sets.bright_and_dim(tmp_path / "data", count=8)
    options = ["dataset=folder", f"dataset.root={root}", "dataset.in_channels=2",
               "dataset.intensity.mode=dataset"]  # fmt: skip
    found = []
    for announce in (True, False):
        cfg = compose("train", options)
        layout = build_layout(cfg.dataset)
        samples = layout.labelled_samples()
        assert resolve_intensity(cfg.dataset, layout, samples, 0, announce) == "uint16"
        stats = OmegaConf.to_container(cfg.dataset.intensity.statistics)
        found.append((stats, capsys.readouterr().out))
    (first, said), (other, silent) = found
    assert first == other and "intensity: measured" in said and silent == ""


def test_normalising_leaves_the_callers_image_alone_and_broadcasts_grey_against_rgb():
    """It works in place on its own float32 copy; where one channel meets three statistics
    the result grows to three channels, as (x - offset) * factor does."""
    norm = Normalisation("fixed", (0.25, 0.5, 0.75), (2.0, 4.0, 8.0), (0.0,) * 3, (1.0,) * 3)
    image = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    kept = image.copy()
    out = norm(image)
    assert np.array_equal(image, kept)
    assert np.allclose(out, (kept - [0.25, 0.5, 0.75]) * [2.0, 4.0, 8.0])
    grey = image[..., :1].copy()
    out = norm(grey)
    assert out.shape == (4, 5, 3) and np.array_equal(grey, image[..., :1])
    assert np.allclose(out[..., 2], (grey[..., 0] - 0.75) * 8.0)
