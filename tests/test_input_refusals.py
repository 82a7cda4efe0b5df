"""Bad input to the N-channel readers, the intensity node and the tracker config: one
paragraph naming the key or file, before any work is done."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from unetcli.core.tiff import stack_planes
from unetcli.datasets.intensity import normalisation
from unetcli.errors import UnetError
from unetcli.tracking.build import make, reopen


def test_channel_files_of_one_image_must_agree_in_size_and_dtype():
    plane = np.zeros((4, 5, 1), np.uint16)
    with pytest.raises(UnetError, match="a.tif differ in size"):
        stack_planes([plane, np.zeros((4, 6, 1), np.uint16)], "a.tif")
    with pytest.raises(UnetError, match="a.tif differ in dtype .uint16, uint8"):
        stack_planes([plane, np.zeros((4, 5, 1), np.uint8)], "a.tif")
    assert stack_planes([plane, plane + 1], "a.tif").shape == (4, 5, 2)


def intensity(**node) -> OmegaConf:
    return OmegaConf.create(
        {"in_channels": 2, "mean": [0.5], "std": [0.25], "intensity": {"mode": "fixed", **node}}
    )


def test_an_intensity_node_that_cannot_normalise_is_refused_by_key():
    with pytest.raises(UnetError, match="must be auto, per_image, fixed or dataset, not 'zscore'"):
        normalisation(intensity(mode="zscore"))
    with pytest.raises(UnetError, match="dataset.intensity.range"):
        normalisation(intensity(range=None))
    with pytest.raises(UnetError, match="dataset.intensity.statistics"):
        normalisation(intensity(mode="dataset", statistics=None))
    fixed = normalisation(intensity(range=[0, 4095]))
    assert fixed(np.full((1, 1, 2), 4095, np.uint16)).ravel().tolist() == [2.0, 2.0]


def test_a_tracker_config_names_its_key_when_it_cannot_be_built():
    with pytest.raises(UnetError, match="cannot build `logger.x`: no tracker class"):
        make({"_target_": "no.such.Tracker"}, "logger.x")
    with pytest.raises(UnetError, match="cannot build `logger.csv` from its config"):
        make({"_target_": "unetcli.tracking.csv_table.CSVTracker", "bogus": 1}, "logger.csv")
    # A checkpoint's record of a tracker whose class is gone now is left out, not an error.
    record = {"x": {"target": "no.such.Tracker", "settings": {}}, "y": {"target": "a.b"}}
    assert reopen(record) == []
