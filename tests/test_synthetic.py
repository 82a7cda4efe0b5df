import csv
import hashlib

import numpy as np
import pytest

from tests.helpers import compose
from unetcli.datasets import grouped_split
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.errors import UnetError

SMALL = {"num_objects": 6, "views": 3, "num_test": 4, "height": 40, "width": 60}


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_and_in_carvana_layout(tmp_path):
    a = SyntheticLayout(tmp_path / "a", seed=3, **SMALL)
    b = SyntheticLayout(tmp_path / "b", seed=3, **SMALL)
    c = SyntheticLayout(tmp_path / "c", seed=4, **SMALL)
    for layout in (a, b, c):
        layout.prepare()
    assert digest(a.root) == digest(b.root) != digest(c.root)
    samples = a.labelled_samples()
    assert len(samples) == 18 and len({s.group for s in samples}) == 6
    for s in samples:
        assert s.image.parent.name == "train" and s.mask.name == f"{s.image.stem}_mask.gif"
        assert s.name.endswith(f"_{s.image.stem[-2:]}.jpg")
        mask = a.read_mask(s.mask)
        assert mask.shape == (40, 60) and set(np.unique(mask)) <= {0, 1} and mask.any()
    # Test rows come in sample_submission.csv's order, which is not sorted.
    with (a.root / "sample_submission.csv").open() as f:
        order = [row["img"] for row in csv.DictReader(f)]
    assert [s.name for s in a.held_out_samples()] == order
    assert all(s.mask is not None and s.mask.is_file() for s in a.held_out_samples())


def test_generated_only_when_missing_and_never_over_user_files(tmp_path):
    layout = SyntheticLayout(tmp_path / "syn", seed=1, **SMALL)
    layout.prepare()
    marker = layout.root / "train" / "extra.txt"
    marker.write_text("mine")
    layout.prepare()
    assert marker.read_text() == "mine"
    user = tmp_path / "user"
    user.mkdir()
    (user / "photo.jpg").write_bytes(b"x")
    with pytest.raises(UnetError, match="will not overwrite"):
        SyntheticLayout(user, **SMALL).prepare()
    assert (user / "photo.jpg").read_bytes() == b"x"


def test_grouped_split_never_separates_a_group(tmp_path):
    layout = SyntheticLayout(tmp_path / "s", seed=0, **SMALL)
    layout.prepare()
    train, val = layout.split(0.34, seed=7)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert len(val) == 6 and len(train) == 12  # 2 of 6 objects, 3 views each
    again, _ = grouped_split(layout.labelled_samples(), 0.34, seed=7)
    assert again == train
    with pytest.raises(UnetError, match="validation_size"):
        grouped_split(train, 1.5, 0)


def test_check_lists_images_without_masks_before_training(tmp_path):
    layout = SyntheticLayout(tmp_path / "s", seed=0, **SMALL)
    layout.prepare()
    samples = layout.labelled_samples()
    layout.check(samples)
    samples[0].mask.unlink()
    with pytest.raises(UnetError, match=r"1 image\(s\) .* have no mask file, e\.g\. .*_mask\.gif"):
        layout.check(samples)


def test_a_folder_holding_another_setting_s_set_is_refused_by_key(tmp_path):
    SyntheticLayout(tmp_path / "s", seed=3, **SMALL).prepare()
    SyntheticLayout(tmp_path / "s", seed=3, **SMALL).prepare()  # the same settings: kept
    with pytest.raises(UnetError, match=r"seed=3 .*dataset\.layout\.seed=4.*dataset\.root"):
        SyntheticLayout(tmp_path / "s", seed=4, **SMALL).prepare()

    (tmp_path / "s" / "synthetic.json").write_text("[not json")
    with pytest.raises(UnetError, match=r"synthetic\.json is not the JSON object"):
        SyntheticLayout(tmp_path / "s", seed=3, **SMALL).prepare()


def test_runs_at_other_seeds_train_on_the_same_set():
    assert compose("train", ["seed=7"]).dataset.layout.seed == 42
