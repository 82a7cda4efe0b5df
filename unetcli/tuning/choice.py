"""Picking the winner: the fastest within a tolerance, ties to the more exact setting."""

from __future__ import annotations

from unetcli.tuning.candidates import Candidate


def choose(candidates: list[Candidate], rates: dict[str, float], tolerance: float) -> Candidate:
    """The most exact candidate whose rate is within `tolerance` of the fastest.

    Measurements on a shared machine wobble by a few per cent; a less exact
    setting has to be clearly faster to be worth its rounding. Among equally
    exact ones (contiguous vs channels-last) the faster wins.
    """
    best = max(rates.values())
    close = [c for c in candidates if rates.get(c.name, 0.0) >= best * (1 - tolerance)]
    return max(close, key=lambda c: (c.exactness, rates[c.name]))
