"""Where the YAML configs live, for both a source checkout and an installed wheel."""

from __future__ import annotations

from pathlib import Path

from unetcli.config.resolvers import register_resolvers

# Every command asks for the folder before Hydra composes its config: the resolvers the
# YAML uses are registered then.
register_resolvers()

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> str:
    """Return the absolute path of the `conf/` folder.

    A wheel carries the configs as `unetcli/conf`; a source checkout (or an
    editable install) keeps them at the top of the repo. Hydra needs an absolute
    path because the console script runs from any working directory.
    """
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError(
        f"unetcli cannot find its configs: neither {_PACKAGE / 'conf'} nor "
        f"{_PACKAGE.parent / 'conf'} holds train.yaml. Reinstall the package."
    )
