"""The one exception type users see.

Anything the user can fix (a missing file, a bad config value, an empty dataset
folder) is raised as `UnetError` with a message that names the file or key and
says what to do. The CLI prints that paragraph and exits non-zero, without a
traceback unless HYDRA_FULL_ERROR=1 asks for one.
"""

from __future__ import annotations

import functools
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class UnetError(Exception):
    """A problem with the user's input, explained in one paragraph."""


def report(message: str, kind: str = "error") -> None:
    """Print a user-facing paragraph to stderr: an error, or (`kind="warning"`) a warning."""
    text = " ".join(str(message).split())
    # Never break inside a path or URL (at its hyphens), so it can be copied.
    lines = textwrap.wrap(
        f"{kind}: {text}", width=100, break_on_hyphens=False, break_long_words=False
    )
    print("\n".join(lines), file=sys.stderr, flush=True)


def user_errors(func: F) -> F:
    """Turn UnetError into a clear message and exit status 1.

    Hydra would otherwise print a stack trace around our message; a user who
    wants it back sets HYDRA_FULL_ERROR=1.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UnetError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            report(str(err))
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
