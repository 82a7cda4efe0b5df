"""The preprocessed data cache (dataset.cache): built once, shared, invalidated per file, never
read half-written, and invisible in what training sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tests.fake_datasets import carvana
from tests.helpers import REPO, run_command, tiny_overrides
from unetcli.core.hardware import resolve_hardware
from unetcli.datasets.carvana import CarvanaLayout
from unetcli.datasets.loaders import make_loader
from unetcli.datasets.preprocessed import (
    PreprocessedStore,
    cache_folder,
    checked_samples,
    entry_name,
    open_store,
)
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform, resize_step
from unetcli.errors import UnetError

DATASET = {
    "name": "carvana",
    "image_size": [24, 32],
    "in_channels": 3,
    "mean": [0.5] * 3,
    "std": [0.25] * 3,
    "layout": {"_target_": "unetcli.datasets.carvana.CarvanaLayout"},
}
FLIPS = OmegaConf.create(
    {"train": [{"_target_": "albumentations.HorizontalFlip", "p": 0.5},
               {"_target_": "albumentations.RandomBrightnessContrast", "p": 0.5}]}
)  # fmt: skip

# Builds the cache of the Carvana layout at argv[1] with dataset.cache=argv[2]; prints the
# start line. argv[3], if given, kills this process (SIGKILL) at that rename into the cache.
BUILD = textwrap.dedent(
    """
    import os, signal, sys
    from omegaconf import OmegaConf
    from unetcli.datasets.carvana import CarvanaLayout
    from unetcli.datasets.preprocessed import open_store
    from unetcli.datasets.torch_dataset import resize_step
    cfg = OmegaConf.create({**DATASET, "cache": sys.argv[2]})
    if len(sys.argv) > 3:
        real, calls = os.replace, []
        def dying_replace(src, dst):
            calls.append(dst)
            if len(calls) == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = dying_replace
    layout = CarvanaLayout(sys.argv[1])
    print(open_store(cfg, layout, layout.labelled_samples(), resize_step(cfg), None)[1])
    """
)


def cfg_for(mode: str = "disk", **extra) -> OmegaConf:
    return OmegaConf.create({**DATASET, "cache": mode, **extra})


def build_in_subprocess(root: Path, mode: str, kill_at: int | None = None) -> subprocess.Popen:
    code = f"DATASET = {DATASET!r}\n{BUILD}"
    args = [sys.executable, "-c", code, str(root), mode] + ([str(kill_at)] if kill_at else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def misses(line: str) -> int:
    return int(line.split(" hit, ")[1].split(" miss")[0])


def expected(layout: CarvanaLayout, sample) -> tuple[np.ndarray, np.ndarray]:
    """What the cache must hold for a sample: its files read and resized, as training would."""
    image, mask = layout.read_image(sample.image), layout.read_mask(sample.mask)
    return resize_step(cfg_for())(image, mask)


def assert_complete_entries_correct(layout: CarvanaLayout) -> int:
    """Every entry the cache would read equals the files' own preprocessing; returns how many."""
    samples = layout.labelled_samples()
    names = {s: entry_name(layout, s) for s in samples}
    store = PreprocessedStore(cache_folder(cfg_for(), layout), names, in_memory=False)
    found = 0
    for sample in samples:
        entry = store.read(sample)
        if entry is None:
            continue
        found += 1
        image, mask = expected(layout, sample)
        assert entry[0].dtype == image.dtype and np.array_equal(entry[0], image)
        assert np.array_equal(entry[1], mask)
        assert entry[2] == (40, 60)
    return found


@pytest.fixture
def layout(tmp_path: Path) -> CarvanaLayout:
    return CarvanaLayout(carvana(tmp_path / "carvana", cars=3, views=4, test=1))


def test_two_processes_building_at_once_build_once(layout):
    first, second = (build_in_subprocess(layout.root, "disk") for _ in range(2))
    lines = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines.append(out.strip().splitlines()[-1])
    assert sorted(misses(line) for line in lines) == [0, 12], lines
    assert assert_complete_entries_correct(layout) == 12


def test_a_changed_file_is_read_again_and_no_other(layout):
    samples = layout.labelled_samples()
    store, line = open_store(cfg_for(), layout, samples, resize_step(cfg_for()), None)
    assert misses(line) == 12
    changed = samples[5].image
    old_name = entry_name(layout, samples[5])
    cv2.imwrite(str(changed), np.full((40, 60, 3), 77, np.uint8))
    os.utime(changed, ns=(10**18, 10**18))  # a modification time that surely differs
    store, line = open_store(cfg_for(), layout, samples, resize_step(cfg_for()), None)
    assert misses(line) == 1 and line.startswith("data cache: 11 hit"), line
    assert assert_complete_entries_correct(layout) == 12
    assert np.abs(store.read(samples[5])[0].astype(int) - 77).max() <= 2  # the new pixels
    assert not list(cache_folder(cfg_for(), layout).glob(f"{old_name}*"))  # stale entry gone
    assert store.read(samples[4]) is not None


def test_a_killed_build_leaves_nothing_read_as_complete(layout):
    # Killed at the 20th of 36 renames: with at most 8 builder threads, each with an entry
    # of 3 files under way, some entries are whole and some lack their mask or their mark.
    proc = build_in_subprocess(layout.root, "disk", kill_at=20)
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    whole = assert_complete_entries_correct(layout)
    assert 0 < whole < 12
    _, line = open_store(cfg_for(), layout, layout.labelled_samples(), resize_step(cfg_for()), None)
    assert misses(line) == 12 - whole
    assert assert_complete_entries_correct(layout) == 12
    assert not list(cache_folder(cfg_for(), layout).glob(".tmp-*"))


def epoch_batches(layout: CarvanaLayout, mode: str, workers: int) -> list[dict]:
    dataset_cfg = cfg_for(mode)
    samples = layout.labelled_samples()
    store, _ = open_store(dataset_cfg, layout, samples, resize_step(dataset_cfg), None)
    transform = build_transform(dataset_cfg, FLIPS, "train", seed=3)
    dataset = SegmentationDataset(layout, samples, transform, store=store)
    runtime = resolve_hardware({"device": "cpu", "num_workers": workers})
    generator = torch.Generator().manual_seed(3)
    return list(make_loader(dataset, 4, runtime, shuffle=True, generator=generator))


@pytest.mark.parametrize(("mode", "workers"), [("memory", 0), ("disk", 2)])
def test_cached_and_uncached_loaders_yield_equal_batches(layout, mode, workers):
    plain = epoch_batches(layout, "off", workers)
    cached = epoch_batches(layout, mode, workers)
    assert len(plain) == len(cached) == 3
    for a, b in zip(plain, cached, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_cache_off_reads_the_files_and_writes_nothing(layout):
    store, line = open_store(cfg_for("off"), layout, layout.labelled_samples(), None, None)
    assert store is None and line is None
    assert not (layout.root / ".unet-cache").exists()


def test_a_cache_folder_that_cannot_be_made_turns_auto_off_and_stops_the_others(layout):
    """Below a regular file no folder can be made, whoever runs the test (root included)."""
    blocker = layout.root / "a-file"
    blocker.write_text("")
    samples = layout.labelled_samples()
    store, line = open_store(cfg_for("auto", cache_dir=str(blocker / "cache")), layout, samples,
                             None, None)  # fmt: skip
    assert store is None and line.startswith("data cache: off (") and str(blocker) in line
    with pytest.raises(UnetError) as refused:
        open_store(cfg_for("disk", cache_dir=str(blocker / "cache")), layout, samples, None, None)
    message = str(refused.value)
    assert "dataset.cache=disk needs a writable folder" in message
    assert "dataset.cache_dir=PATH" in message and "dataset.cache=off" in message


def test_training_with_the_cache_gives_the_same_weights(tmp_path, capsys):
    # 48x64 files trained at 32x48, so the cached entries are really resized.
    base = tiny_overrides(tmp_path, objects=12) + [
        "dataset.image_size=[32,48]", "trainer.epochs=1", "trainer.log_images=0",
        "hardware.precision=fp32", "logger=[csv]",
    ]  # fmt: skip
    weights = {}
    for mode in ("off", "memory"):
        run_command("train", [*base, f"dataset.cache={mode}"], tmp_path / mode)
        out = capsys.readouterr().out
        assert ("data cache: 0 hit, 24 miss" in out) == (mode == "memory"), out
        assert "fixed costs: start-up" in out and "checkpoints" in out
        last = next((tmp_path / mode).rglob("last.pt"))
        weights[mode] = torch.load(last, weights_only=True)["model"]
    assert (tmp_path / "data" / "synthetic" / ".unet-cache").is_dir()
    assert weights["off"].keys() == weights["memory"].keys()
    for key, value in weights["off"].items():
        assert torch.equal(value, weights["memory"][key]), key
    inference_reads_through_the_cache(tmp_path, capsys, next((tmp_path / "off").rglob("last.pt")))


def inference_reads_through_the_cache(tmp_path: Path, capsys, checkpoint: Path) -> None:
    """evaluate reads the validation entries training built, predict with dataset.cache=disk
    builds the test images' entries, and both give what reading the files gives."""
    common = [f"checkpoint={checkpoint}", "hardware=cpu", "hardware.tune=false",
              "hardware.precision=fp32", "hardware.num_workers=0"]  # fmt: skip
    scored = {}
    for mode in ("off", "auto"):
        found = run_command(
            "evaluate", [*common, "evaluate.progress=false", f"dataset.cache={mode}"],
            tmp_path / f"evaluate-{mode}",
        )  # fmt: skip
        out = capsys.readouterr().out
        assert ("data cache: 4 of 4 images from" in out) == (mode == "auto"), out
        scored[mode] = (found["metrics"], (tmp_path / f"evaluate-{mode}" / "per_image.csv"))
    assert scored["auto"][0] == scored["off"][0]
    assert scored["auto"][1].read_text() == scored["off"][1].read_text()
    rows = {}
    for mode in ("off", "disk", "auto"):
        args = [*common, "predict.progress=false", f"dataset.cache={mode}"]
        submission = run_command("predict", args, tmp_path / f"predict-{mode}")
        out = capsys.readouterr().out
        rows[mode] = submission.read_bytes()
        assert ("data cache: 0 hit, 6 miss" in out) == (mode == "disk"), out
        assert ("data cache: 6 of 6 images from" in out) == (mode == "auto"), out
    assert rows["disk"] == rows["off"] == rows["auto"]


def test_only_unchanged_files_that_passed_the_check_skip_the_next_check(layout):
    samples = layout.labelled_samples()
    open_store(cfg_for(), layout, samples[:6], resize_step(cfg_for()), None, checked=True)
    open_store(cfg_for(), layout, samples[6:], resize_step(cfg_for()), None, checked=False)
    assert checked_samples(cfg_for(), layout, samples) == set(samples[:6])
    os.utime(samples[2].mask, ns=(10**18, 10**18))  # its mask changed: checked again
    assert checked_samples(cfg_for(), layout, samples) == set(samples[:6]) - {samples[2]}
    assert checked_samples(cfg_for("off"), layout, samples) == set()


def test_an_entry_name_covers_every_channel_file_of_an_image(tmp_path):
    """With one file per channel, a change to any channel's file names another entry."""

    class TwoChannelFiles(CarvanaLayout):
        def image_files(self, path: Path) -> list[Path]:
            return [path, path.with_suffix(".nir")]

    root = carvana(tmp_path / "data", cars=1)
    layout = TwoChannelFiles(root)
    sample = layout.labelled_samples()[0]
    other = sample.image.with_suffix(".nir")
    other.write_bytes(b"band")
    before = entry_name(layout, sample)
    other.write_bytes(b"band, edited")
    assert entry_name(layout, sample) != before
