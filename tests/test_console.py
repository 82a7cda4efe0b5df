"""Progress in a log: a line now and then where stderr is not a terminal, never a redraw."""

from __future__ import annotations

import pytest

from unetcli.core import console


class Clock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize(("seconds_per_batch", "lines"), [(40.0, 10), (1.0, 0)])
def test_a_log_gets_a_line_per_tenth_of_a_long_pass_only(
    monkeypatch, capsys, seconds_per_batch, lines
):
    monkeypatch.setattr(console.time, "monotonic", Clock(seconds_per_batch))
    with console.progress_bar(total=100, desc="predict") as bar:  # stderr is captured: no tty
        assert isinstance(bar, console.LineProgress)
        for _ in range(10):
            bar.update(10)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len(err.splitlines()) == lines
    if lines:
        assert err.splitlines()[4].startswith("predict: 50/100 images (50%")


def test_no_description_means_no_bar(capsys):
    for _ in console.progress_bar(range(5), desc=None):
        pass
    assert capsys.readouterr().err == ""
