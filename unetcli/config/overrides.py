"""Command lines as Hydra reads them: a bare argument as the value of a command's key."""

from __future__ import annotations

import re

# Characters Hydra's override grammar takes unquoted in a value (paths of letters, digits,
# slashes, dots, dashes, ...); anything else is quoted.
_PLAIN = re.compile(r"[\w./~+@:%-]+")


def quoted(value: str) -> str:
    """`value` as an override value that Hydra reads back unchanged."""
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquoted(value: str) -> str:
    """The value `quoted` was given."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return value


def bare_argument_as(key: str, args: list[str]) -> list[str]:
    """`args` with each argument that is neither a flag nor `key=value` turned into
    `key=<it>` (`unet score SUBMISSION` is `unet score submission=SUBMISSION`)."""
    return [a if a.startswith("-") or "=" in a else f"{key}={quoted(a)}" for a in args]
