"""Hole filling: enclosed background becomes the object; what touches the border stays."""

import numpy as np

from unetcli.core.task import Task
from unetcli.postprocessing.labels import fill_holes, postprocess


def test_an_enclosed_hole_is_filled_and_an_open_bay_is_not():
    labels = np.zeros((9, 9), np.uint8)
    labels[1:6, 1:6] = 1
    labels[3, 3] = 0  # a hole
    labels[5:9, 5:9] = 2
    labels[6, 6] = 0  # a hole of class 2
    labels[7:9, 8] = 0  # ... but this bay touches the border: stays open
    out = fill_holes(labels)
    assert out[3, 3] == 1
    assert out[6, 6] == 2
    assert out[8, 8] == 0
    assert (out[labels != 0] == labels[labels != 0]).all()


def test_multilabel_planes_and_the_postprocess_switch():
    plane = np.zeros((7, 7), np.float32)
    plane[1:6, 1:6] = 0.9
    plane[3, 3] = 0.1
    probs = np.stack([plane, plane])
    task = Task("multilabel", 2, None)
    assert postprocess(probs, task, 0.5, 0, holes=True)[:, 3, 3].tolist() == [1, 1]
    assert postprocess(probs, task, 0.5, 0)[:, 3, 3].tolist() == [0, 0]
