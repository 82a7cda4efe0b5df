"""Command lines as Hydra reads them: a bare argument as the value of a command's key."""

from __future__ import annotations

import re

# Characters Hydra's override grammar takes unquoted in a value (paths of letters, digits,
# slashes, dots, dashes, ...); anything else is quoted.
_PLAIN = re.compile(r"[\w./~+@:%-]+")
# Hydra's quoted strings: backslashes are literal, except a run of them before a quote or
# the closing quote, which is halved (an odd one escapes the quote).
_BEFORE_QUOTE = re.compile(r"(\\*)('|$)")


def quoted(value: str) -> str:
    """`value` as an override value that Hydra reads back unchanged."""
    if _PLAIN.fullmatch(value):
        return value
    body = _BEFORE_QUOTE.sub(lambda m: 2 * m.group(1) + ("\\'" if m.group(2) else ""), value)
    return f"'{body}'"


def unquoted(value: str) -> str:
    """The value `quoted` was given."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return _BEFORE_QUOTE.sub(_halved, value[1:-1])
    return value


def _halved(match: re.Match) -> str:
    return match.group(1)[: len(match.group(1)) // 2] + match.group(2)


def bare_argument_as(key: str, args: list[str]) -> list[str]:
    """`args` with each argument that is neither a flag nor `key=value` turned into
    `key=<it>` (`unet score SUBMISSION` is `unet score submission=SUBMISSION`)."""
    return [a if a.startswith("-") or "=" in a else f"{key}={quoted(a)}" for a in args]
