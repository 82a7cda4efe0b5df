"""`unet doctor` names each mask encoding a user brings, and its suggested options train.

Each folder is built here in one encoding (tests/doctor_folders.py); the test
runs the doctor, checks what it found, then runs `unet train` on the same
folder with exactly the options the doctor printed.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from tests import doctor_folders
from tests.helpers import run_command, run_unet
from unetcli.datasets.folder import FolderLayout
from unetcli.doctor.findings import override
from unetcli.errors import UnetError

TINY_TRAIN = [
    "dataset.image_size=[32,48]",
    "model.widths=[4,8]",
    "trainer.epochs=1",
    "trainer.batch_size=4",
    "trainer.log_images=0",
    "trainer.progress=false",
    "hardware.num_workers=0",
]

CASES = {
    # encoding: (name the doctor gives, options it must suggest)
    "0-1": ("binary 0/1", {"dataset.num_classes": 1}),
    "0-255": ("binary 0/255", {"dataset.num_classes": 1}),
    "16-bit": ("binary 0/65535", {"dataset.num_classes": 1, "dataset.in_channels": 1}),
    "indices": ("class indices", {"dataset.num_classes": 3}),
    "grey-values": (
        "grey values standing for classes",
        {"dataset.layout.mask_values": [0, 85, 170], "dataset.num_classes": 3},
    ),
    "palette": ("palette PNG", {"dataset.layout.palette": True, "dataset.num_classes": 3}),
    "rgb": ("RGB colours", {"dataset.num_classes": 3}),
    "instances": ("instance labels", {"dataset.layout.threshold": 0}),
    "jpeg": ("lossy JPEG masks", {"dataset.layout.threshold": 127}),
    "suffix": ("binary 0/255", {"dataset.layout.mask_suffix": "_mask"}),
}


def _doctor(tmp_path, root, *extra):
    args = ["dataset=folder", f"dataset.root={root}", "dataset.image_size=[32,48]", *extra]
    return run_command("doctor", args, tmp_path / "doctor")


@pytest.mark.parametrize("encoding", list(CASES))
def test_doctor_names_the_encoding_and_its_options_train(tmp_path, encoding):
    root = doctor_folders.build(tmp_path / "data", encoding)
    report = _doctor(tmp_path, root)
    name, expected = CASES[encoding]
    assert report["encoding"]["name"] == name
    assert expected.items() <= report["options"].items()
    channels = report["options"].get("dataset.in_channels", 3)
    assert len(report["options"]["dataset.mean"]) == channels
    result = run_command(
        "train",
        [
            "dataset=folder",
            f"dataset.root={root}",
            f"paths.output_root={tmp_path / 'out'}",
            *[override(k, v) for k, v in report["options"].items()],
            *TINY_TRAIN,
        ],
        tmp_path / "train",
    )
    assert result["epochs"] == 1 and np.isfinite(result["best_value"])


def test_rgb_masks_get_a_colour_table_and_the_report_is_written(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "rgb")
    report = _doctor(tmp_path, root)
    table = (tmp_path / "doctor" / "classes.csv").read_text().splitlines()
    assert table == ["name,r,g,b", "background,0,0,0", "class1,30,200,30", "class2,200,30,30"]
    assert report["options"]["dataset.layout.class_csv"] == str(tmp_path / "doctor" / "classes.csv")
    saved = json.loads((tmp_path / "doctor" / "doctor.json").read_text())
    assert saved["encoding"]["colours"] == [[0, 0, 0], [30, 200, 30], [200, 30, 30]]
    assert set(saved["objects"]["class_frequency"]) == {"0", "1", "2"}
    assert (tmp_path / "doctor" / "doctor.png").stat().st_size > 1000


def test_objects_are_measured_at_the_planned_size(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "0-255")
    full = _doctor(tmp_path, root)["objects"]
    half = run_command(
        "doctor",
        ["dataset=folder", f"dataset.root={root}", "dataset.image_size=[16,20]"],
        tmp_path / "half",
    )["objects"]
    assert half["planned_size"] == [16, 20] and full["planned_size"] == [32, 48]
    assert half["median_area"] < full["median_area"] / 2


def test_image_and_mask_folders_found_by_their_names(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "0-1")
    (root / "images").rename(root / "imgs")
    (root / "masks").rename(root / "GT_labels")
    report = _doctor(tmp_path, root)
    assert report["pairing"]["paired"] == 10
    assert {"dataset.layout.images": "imgs", "dataset.layout.masks": "GT_labels"}.items() <= (
        report["options"].items()
    )


def test_broken_and_mismatched_files_are_named_and_left_out(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "0-255")
    (root / "masks" / "img04.png").write_bytes(b"not a png")
    cv2.imwrite(str(root / "masks" / "img05.png"), np.zeros((10, 10), np.uint8))
    report = _doctor(tmp_path, root)
    assert report["images"]["count"] == 8
    assert report["problems"][0].startswith("cannot decode a mask of img04.png")
    assert report["problems"][1] == "mask img05.png is 10x10, its image 40x32"


def test_duplicates_within_the_set_and_across_train_and_test(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "0-255")
    shutil.copy(root / "images" / "img01.png", root / "images" / "copy.png")
    shutil.copy(root / "masks" / "img01.png", root / "masks" / "copy.png")
    (root / "test").mkdir()
    shutil.copy(root / "images" / "img03.png", root / "test" / "t.png")
    dup = _doctor(tmp_path, root)["duplicates"]
    assert dup["within"] == [["copy.png", "img01.png"]]
    assert dup["train_test"] == [["img03.png", "t.png"]]


def test_names_that_differ_only_in_case_are_a_near_miss(tmp_path, capsys):
    root = doctor_folders.build(tmp_path / "data", "0-255")
    (root / "masks" / "img02.png").rename(root / "masks" / "IMG02.png")
    pairing = _doctor(tmp_path, root)["pairing"]
    assert pairing["paired"] == 9 and pairing["without_mask"] == ["img02.png"]
    assert "image img02.png and mask IMG02.* differ only in case" in pairing["near_misses"][0]
    assert "differ only in case" in capsys.readouterr().out


def test_palette_and_value_list_masks_decode_to_class_numbers(tmp_path):
    root = doctor_folders.build(tmp_path / "palette", "palette", n=1)
    layout = FolderLayout(root, num_classes=3, palette=True)
    (sample,) = layout.labelled_samples()
    assert sorted(np.unique(layout.read_mask(sample.mask))) == [0, 1, 2]
    layout.check([sample])
    grey = doctor_folders.build(tmp_path / "grey", "indices", n=1)
    mask = grey / "masks" / "img00.png"
    cv2.imwrite(str(mask), cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) * 85)
    layout = FolderLayout(grey, num_classes=3, mask_values=[0, 85, 170])
    assert sorted(np.unique(layout.read_mask(mask))) == [0, 1, 2]
    with pytest.raises(UnetError, match="mask_values does not list"):
        FolderLayout(grey, num_classes=3, mask_values=[0, 85]).check(layout.labelled_samples())


@pytest.mark.slow
def test_doctor_command_prints_the_train_command(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "suffix")
    proc = run_unet(
        "doctor",
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.validation_size=0.3",
        f"doctor.output_dir={tmp_path / 'rep'}",
        cwd=tmp_path,
    )
    command = proc.stdout.split("train with:")[1].splitlines()[1]
    assert command.startswith(f"  unet train dataset=folder dataset.root={root} ")
    assert "dataset.validation_size=0.3 dataset.layout.mask_suffix=_mask" in command
    assert (tmp_path / "rep" / "doctor.json").is_file()
