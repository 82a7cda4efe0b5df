"""Augmentation presets keep image and mask aligned; the preview grid shows them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from tests import doctor_folders
from tests.conftest import REPO, only_run_dir, run_unet, tiny_overrides
from tests.helpers import run_command
from unetcli.core.drawing import class_colour, overlay
from unetcli.datasets.folder import FolderLayout
from unetcli.datasets.torch_dataset import build_transform
from unetcli.errors import UnetError

PRESETS = sorted(p.stem for p in (REPO / "conf" / "augmentation").glob("*.yaml"))
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
BRIGHT, DARK = 210, 40


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def known_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey image whose mask is a known function of it: bright pixels are foreground."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((height // 8 + 1, width // 8 + 1)) > 0.6
    mask = np.kron(blocks, np.ones((8, 8), bool))[:height, :width].astype(np.uint8)
    image = np.where(mask[..., None] > 0, BRIGHT, DARK).astype(np.uint8).repeat(3, axis=2)
    return image, mask


def mask_of(normalised: np.ndarray) -> np.ndarray:
    """The known function, applied to a transformed (normalised) image."""
    grey = (normalised * np.asarray(STD) + np.asarray(MEAN)).mean(-1) * 255
    return (grey > (BRIGHT + DARK) / 2).astype(np.uint8)


def agreement(image_mask: np.ndarray, mask: np.ndarray) -> float:
    """Share of pixels, away from mask edges (interpolation blurs those), where both agree."""
    edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    keep = ~edges
    return float((image_mask[keep] == mask[keep]).mean())


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_moves_image_and_mask_together(preset):
    extra = ["augmentation.crop_size=32"] if preset == "random_crop" else []
    cfg = compose_train(f"augmentation={preset}", "dataset.image_size=[64,96]", *extra)
    cfg.dataset.mean, cfg.dataset.std = MEAN, STD
    train = build_transform(cfg.dataset, cfg.augmentation, "train")
    val = build_transform(cfg.dataset, cfg.augmentation, "val")
    train.set_random_seed(0)
    image, mask = known_pair(60, 90)
    reference = val(image=image, mask=mask)
    assert agreement(mask_of(reference["image"]), reference["mask"]) > 0.99
    changed = 0
    for _ in range(12):
        weight = mask.astype(np.float32) * 3 + 1  # an extra mask target: the loss weight map
        out = train(image=image, mask=mask, masks=[weight])
        assert out["image"].shape[:2] == out["mask"].shape  # non-square images stay batchable
        assert out["image"].shape[:2] == ((32, 32) if preset == "random_crop" else (64, 96))
        assert agreement(mask_of(out["image"]), out["mask"]) > 0.97, preset
        # The weight map moves with the mask; where a transform fills in new pixels
        # (outside the original image) both get 0, so those pixels carry no loss.
        weight, filled = out["masks"][0], out["masks"][0] == 0
        np.testing.assert_array_equal(weight[~filled], (out["mask"] * 3 + 1)[~filled])
        assert (out["mask"][filled] == 0).all()
        if out["image"].shape != reference["image"].shape or not np.allclose(
            out["image"], reference["image"]
        ):
            changed += 1
    assert (changed == 0) if preset == "none" else (changed >= 3), changed


def test_the_alignment_check_catches_an_image_moved_without_its_mask():
    cfg = compose_train("augmentation=none", "dataset.image_size=[64,96]")
    cfg.dataset.mean, cfg.dataset.std = MEAN, STD
    image, mask = known_pair(60, 90)
    out = build_transform(cfg.dataset, cfg.augmentation, "train")(image=image[:, ::-1], mask=mask)
    assert agreement(mask_of(out["image"]), out["mask"]) < 0.9


def test_rot90_preset_turns_square_images_a_quarter():
    cfg = compose_train("augmentation=flips_rot90", "dataset.image_size=[32,32]")
    cfg.dataset.mean, cfg.dataset.std = MEAN, STD
    image, mask = known_pair(32, 32, seed=3)
    train = build_transform(cfg.dataset, cfg.augmentation, "train")
    train.set_random_seed(0)
    outs = [train(image=image, mask=mask)["mask"] for _ in range(40)]
    quarter = [np.rot90(mask, k) for k in (1, 3)]
    assert any(any(np.array_equal(o, q) for q in quarter) for o in outs)


def test_overlay_tints_and_outlines_the_mask_only():
    image = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    mask[0:3, 16:20] = 2
    out = overlay(image, mask, alpha=0.5)
    first = np.asarray(class_colour(1))
    assert np.allclose(out[10, 10], 0.5 * 100 + 0.5 * first, atol=1)  # inside: tinted
    assert np.array_equal(out[5, 8], first)  # on the outline
    assert (out[0:4, 0:4] == 100).all()  # far from any object: untouched
    assert np.array_equal(out[0, 18], class_colour(2))  # class 2 in its own colour


@pytest.mark.slow
def test_augment_command_writes_the_preview_grid(tmp_path):
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith(("model.", "trainer."))]
    proc = run_unet(
        "augment",
        *overrides,
        "augmentation=carvana",
        "augment.images=3",
        "augment.variants=2",
        cwd=tmp_path,
    )
    assert "unet augment: done" in proc.stdout
    png = only_run_dir(tmp_path / "outputs" / "augment") / "augmentations.png"
    grid = cv2.imread(str(png))
    gap = 4
    assert grid.shape == (3 * 48 + 2 * gap, 3 * 64 + 2 * gap, 3)
    # The overlay colour is there: some pixels of the outline are class 1's colour (BGR).
    assert (grid == np.asarray(class_colour(1)[::-1])).all(-1).sum() > 20
    # augment.output names the file (checked in-process: same code, no second start-up).
    from unetcli.commands.augment import run

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("augment", overrides=[*overrides, f"augment.output={tmp_path / 'look.png'}"])
    assert run(cfg) == tmp_path / "look.png"
    assert cv2.imread(str(tmp_path / "look.png")).shape[0] == 4 * 48 + 3 * gap
    bad = run_unet("augment", *overrides, "augment.split=test", cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "augment.split must be train or val" in bad.stderr


def test_offline_copies_write_the_folder_layout_and_train(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "suffix", n=5)
    out = tmp_path / "augmented"
    common = [
        "dataset=folder",
        "dataset.image_size=[32,48]",
        "trainer.progress=false",
        "hardware.num_workers=0",
        f"paths.output_root={tmp_path / 'runs'}",
    ]
    run_command(
        "augment",
        [
            *common,
            f"dataset.root={root}",
            "dataset.layout.mask_suffix=_mask",
            "augmentation=flips_rot90",
            f"augment.output_dir={out}",
            "augment.copies=2",
        ],
        tmp_path / "aug",
    )
    images = sorted(p.name for p in (out / "images").iterdir())
    assert len(images) == 15 and "img00_aug2.png" in images
    assert images == sorted(p.name for p in (out / "masks").iterdir())
    mask = cv2.imread(str(out / "masks" / "img03_aug1.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (32, 48) and set(np.unique(mask)) == {0, 255}
    train, val = FolderLayout(out).split(0.2, 42)  # copies follow their original
    assert {s.group for s in train}.isdisjoint({s.group for s in val}) and len(val) == 3
    result = run_command(
        "train",
        [
            *common,
            f"dataset.root={out}",
            "augmentation=none",
            "model.widths=[4,8]",
            "trainer.epochs=1",
            "trainer.batch_size=4",
            "trainer.log_images=0",
        ],
        tmp_path / "train",
    )
    assert result["epochs"] == 1


def test_offline_copies_never_go_into_a_folder_that_holds_files(tmp_path):
    root = doctor_folders.build(tmp_path / "data", "0-255", n=2)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with pytest.raises(UnetError, match="not an empty folder"):
        run_command(
            "augment",
            ["dataset=folder", f"dataset.root={root}", f"augment.output_dir={out}"],
            tmp_path / "aug",
        )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
