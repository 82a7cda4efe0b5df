"""Durations as people write them: 90s, 30m, 2h, 1h30m."""

from __future__ import annotations

import re

from unetcli.errors import UnetError

_UNITS = {"s": 1, "m": 60, "h": 3600}


def seconds(text: str | int | float) -> float:
    """`plan.time_budget` in seconds (a bare number is minutes)."""
    if isinstance(text, int | float):
        return float(text) * 60
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*", str(text)
    )
    if not parts or not any(parts.groups()) or float(_total(parts.groups())) <= 0:
        raise UnetError(
            f"plan.time_budget={text!r} is not a duration; write e.g. 30m, 2h, 1h30m or 90s"
        )
    return _total(parts.groups())


def _total(groups: tuple) -> float:
    return sum(float(g or 0) * u for g, u in zip(groups, (3600, 60, 1)))
