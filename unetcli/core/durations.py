"""Durations as people write them, read the same way for every key that takes one.

`2h`, `90m`, `1h30m`, `40s` (parts may be separated by spaces), or a bare number, which is
seconds everywhere (trainer.time_budget, plan.time_budget, trainer.checkpoint_every,
hardware.tune_budget.seconds). A duration is more than zero; null means none.
"""

from __future__ import annotations

import re

from unetcli.errors import UnetError

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = r"\d+(?:\.\d+)?"
_PARTS = re.compile(rf"\s*(?:({_NUMBER})\s*h)?\s*(?:({_NUMBER})\s*m)?\s*(?:({_NUMBER})\s*s)?\s*")


def seconds(value: object, key: str) -> float | None:
    """`value` in seconds (None for null); `key` names the config key in the error."""
    if value is None:
        return None
    total = _parse(value)
    if total is None or total <= 0:
        raise UnetError(
            f"{key}={value!r} is not a duration; write it as 2h, 90m, 1h30m, 40s or a number "
            "of seconds (more than zero)"
        )
    return total


def _parse(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    if re.fullmatch(_NUMBER, text):
        return float(text)
    parts = _PARTS.fullmatch(text)
    if not parts or not any(parts.groups()):
        return None
    return sum(float(n or 0) * u for n, u in zip(parts.groups(), _UNITS.values()))
