"""A bare argument becomes `key=value` that Hydra reads back as the very string given."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from unetcli.config.overrides import bare_argument_as, quoted, unquoted

PATHS = [
    "sub.csv.gz", "/data/my sub, final.csv.gz", "it's\\here", "a=b c", "[x]", "ends\\",
    "x\\'y", "two\\\\",
]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_a_quoted_path_reaches_the_config_unchanged(path):
    override = f"submission={quoted(path)}"
    parsed = OverridesParser.create().parse_overrides([override])[0]
    assert parsed.value() == path
    assert unquoted(quoted(path)) == path


def test_flags_and_overrides_stay_as_they_are():
    args = ["--cfg", "job", "masks=DIR", "sub.csv.gz"]
    assert bare_argument_as("submission", args) == [
        "--cfg", "submission=job", "masks=DIR", "submission=sub.csv.gz"
    ]  # fmt: skip
