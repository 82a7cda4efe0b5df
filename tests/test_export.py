"""`unet export` and the torch-free runner: every model and task exports and verifies, the
runner's submission equals `unet predict`'s byte for byte, damaged files are one paragraph."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers import REPO, compose, run_command, run_unet, tiny_overrides
from unetcli.core.checkpoints import save_checkpoint
from unetcli.datasets.layouts import build_layout
from unetcli.errors import UnetError
from unetcli.models.contract import build_model
from unetcli.runner.__main__ import run as run_runner

MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
# Tiny widths per model (same architecture, a fraction of the channels).
TINY = {
    "unet": ["model.widths=[4,8,16]"],
    "unet_small": ["model.widths=[4,8,16]"],
    "unet1024": ["model.widths=[2,2,4,4,4,4,4,8]"],
    "unet_original": ["model.widths=[4,8,16]"],
    "unet_resnet": ["model.encoder=resnet18", "model.decoder_channels=[16,8,8,8,4]"],
    "unet_timm": ["model.encoder=test_resnet", "model.decoder_channels=[16,8,8,8,4]"],
}
TASKS = {
    "multiclass": ["dataset.num_classes=3", "dataset.task=multiclass", "model.widths=[4,8]"],
    "multilabel": ["dataset.num_classes=2", "dataset.task=multilabel", "model.widths=[4,8]"],
}
PREDICT_FP32 = ["hardware=cpu", "hardware.precision=fp32", "hardware.num_workers=0"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


def make_checkpoint(root: Path, name: str, overrides: list[str]) -> Path:
    """A checkpoint of an untrained model: export must be exact for any weights."""
    base = [o for o in tiny_overrides(root, objects=6) if not o.startswith("model.")]
    cfg = compose("train", [*base, *overrides])
    cfg.paths.run_dir = str(root / name)
    build_layout(cfg.dataset)  # generates the synthetic images once
    torch.manual_seed(0)
    model = build_model(cfg.model)
    state = {"model": model.state_dict(), "epoch": 0, "metrics": {}}
    state["config"] = OmegaConf.to_container(cfg, resolve=True)
    path = root / name / "best.pt"
    save_checkpoint(state, path)
    return path


def export(root: Path, checkpoint: Path, name: str, extra: list[str] = ()) -> dict:
    overrides = [f"checkpoint={checkpoint}", f"paths.output_root={root / 'outputs'}"]
    return run_command("export", [*overrides, *extra], root / name)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_exports_and_verifies_at_an_odd_size(root, model):
    checkpoint = make_checkpoint(root, model, [f"model={model}", *TINY[model]])
    extra = ["export.verify_sizes=[[37,53]]", "export.verify_images=1", "export.format=none"]
    report = export(root, checkpoint, f"export-{model}", extra)
    sizes = {tuple(c["size"]) for c in report["checks"]}
    assert sizes == {(48, 64), (37, 53)} and len(report["checks"]) == 2
    assert report["max_difference"] < report["tolerance"] and report["min_check_dice"] >= 0.999
    info = json.loads((root / f"export-{model}" / "inference.json").read_text())
    assert (info["geometry"]["output_margin"] > 0) == (model == "unet_original")
    assert report["program"] is None


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_tasks_export_with_their_activation_and_classes(root, task):
    checkpoint = make_checkpoint(root, task, TASKS[task])
    extra = ["export.tta=[hflip,rot90]", "export.format=none"]
    report = export(root, checkpoint, f"export-{task}", extra)
    assert report["max_difference"] < report["tolerance"]
    info = json.loads((root / f"export-{task}" / "inference.json").read_text())
    assert info["output"]["activation"] == ("softmax" if task == "multiclass" else "sigmoid")
    assert info["predict"]["tta"] == ["hflip", "rot90"]
    classes = info["task"]["classes"]
    assert len(classes) == (3 if task == "multiclass" else 2)
    assert all(len(c["colour"]) == 3 and c["name"] for c in classes)


@pytest.mark.parametrize(
    "mode",
    [
        ["export.mode=sliding", "export.window=[32,48]", "export.overlap=0.25"],
        ["export.mode=full", "export.tta=[vflip,rot270]"],
    ],
    ids=["sliding", "full"],
)
def test_sliding_and_full_modes_verify_and_reach_inference_json(root, mode):
    checkpoint = make_checkpoint(root, "modes", ["model.widths=[4,8]"])
    name = f"export-{mode[0].split('=')[1]}"
    report = export(root, checkpoint, name, [*mode, "export.format=none"])
    assert report["max_difference"] < report["tolerance"]
    predict = json.loads((root / name / "inference.json").read_text())["predict"]
    assert predict["mode"] == mode[0].split("=")[1]
    assert predict["window"] == ([32, 48] if "sliding" in name else None)


@pytest.fixture(scope="module")
def trained(root) -> dict:
    """A briefly trained binary model, exported, and `unet predict`'s submission with it."""
    # The same set as make_checkpoint's: a folder holds one synthetic set.
    overrides = [*tiny_overrides(root, objects=6), "trainer.epochs=4"]
    run_command("train", overrides, root / "train")
    checkpoint = root / "train" / "checkpoints" / "best.pt"
    report = export(root, checkpoint, "export-trained")
    assert Path(report["program"]).name == "model.pt2" and Path(report["program"]).is_file()
    predict = [f"checkpoint={checkpoint}", "predict.progress=false", *PREDICT_FP32]
    submission = run_command("predict", predict, root / "predict")
    test_dir = root / "data" / "synthetic" / "test"
    return {
        "report": report,
        "onnx": Path(report["onnx"]),
        "submission": submission,
        "test": test_dir,
        "order": test_dir.parent / "sample_submission.csv",
    }


def rows(path: Path) -> bytes:
    return gzip.decompress(Path(path).read_bytes())


def test_runner_submission_equals_unet_predict_byte_for_byte(trained, tmp_path):
    out = run_runner(trained["onnx"], trained["test"], tmp_path, True, trained["order"])
    assert rows(out) == rows(trained["submission"])
    lines = rows(out).decode().splitlines()
    assert lines[0] == "img,rle_mask" and len(lines) == 1 + len(list(trained["test"].iterdir()))
    assert sum(bool(line.split(",")[1]) for line in lines[1:]) >= len(lines) // 2  # not empty
    assert len(list((tmp_path / "masks").glob("*.png"))) == len(lines) - 1


def test_importing_the_runner_imports_no_torch():
    code = (
        "import sys, unetcli, unetcli.runner.__main__; "
        "heavy = ('torch', 'albumentations', 'hydra', 'omegaconf', 'PIL', 'tqdm'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_model_is_one_clear_paragraph(trained, tmp_path, damage):
    data = trained["onnx"].read_bytes()
    broken = tmp_path / "model.onnx"
    broken.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a model" * 50)
    (tmp_path / "inference.json").write_bytes(
        trained["onnx"].with_name("inference.json").read_bytes()
    )
    with pytest.raises(UnetError, match=r"cannot load .*model.onnx.*Export the checkpoint again"):
        run_runner(broken, trained["test"], tmp_path / "out")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "unetcli.runner",
            str(broken),
            str(trained["test"]),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot load") and "\n\n" not in proc.stderr.strip()


def test_runner_refuses_a_model_without_its_inference_json(trained, tmp_path):
    lone = tmp_path / "model.onnx"
    lone.write_bytes(trained["onnx"].read_bytes())
    with pytest.raises(UnetError, match="inference.json is missing"):
        run_runner(lone, trained["test"], tmp_path / "out")


@pytest.mark.slow
def test_unet_export_subprocess_then_predict_with_the_onnx_model(trained, tmp_path):
    checkpoint = trained["report"]["checkpoint"]
    run_unet(
        "export",
        f"checkpoint={checkpoint}",
        "export.verify_images=1",
        "export.format=none",
        f"hydra.run.dir={tmp_path / 'export'}",
        cwd=tmp_path,
    )
    assert json.loads((tmp_path / "export" / "export.json").read_text())["checks"]
    onnx = tmp_path / "export" / "model.onnx"
    overrides = [f"checkpoint={onnx}", f"predict.input={trained['test']}"]
    submission = run_command("predict", overrides, tmp_path / "p")
    assert sorted(rows(submission).splitlines()) == sorted(rows(trained["submission"]).splitlines())


@pytest.mark.slow
def test_runner_in_a_fresh_venv_without_torch(trained, tmp_path):
    """Only onnxruntime, NumPy and OpenCV (the versions of this environment) in a new venv."""
    from importlib.metadata import version

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wanted = [f"{p}=={version(p)}" for p in ("onnxruntime", "numpy", "opencv-python-headless")]
    # This environment's pip installs into the new venv (faster than bootstrapping its own).
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile"]
    subprocess.run([*pip, *wanted], check=True, capture_output=True)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "unetcli.runner",
            str(trained["onnx"]),
            str(trained["test"]),
            "--out",
            str(out),
            "--order",
            str(trained["order"]),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    missing = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert missing.returncode != 0  # the venv really has no torch
    assert rows(out / "submission.csv.gz") == rows(trained["submission"])


def test_pt2_program_runs_at_the_training_size_like_the_onnx_graph(trained):
    from unetcli.runner.session import Graph

    report = trained["report"]
    assert report["program_sides"] == [48, 64]  # the training size the resize mode feeds
    program = torch.export.load(report["program"]).module()
    pixels = torch.randint(0, 256, (3, 48, 64, 3), dtype=torch.uint8)
    expected = Graph(trained["onnx"])(pixels.numpy())
    assert torch.allclose(program(pixels), torch.from_numpy(expected), atol=1e-5)


def test_torchscript_only_on_request(root):
    checkpoint = make_checkpoint(root, "ts", ["model.widths=[4,8]"])
    report = export(root, checkpoint, "export-ts", ["export.format=torchscript"])
    scripted = torch.jit.load(report["program"])
    pixels = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8)
    assert scripted(pixels).shape == (2, 1, 48, 64)
