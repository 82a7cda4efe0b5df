"""The Hydra plugins behind `hydra/launcher=...`, `hydra/sweeper=optuna` and `hparams_search=...`.

They come with the `cluster` extra. Without it Hydra only says that it cannot
find `hydra/launcher/joblib`; this check says which `pip install` to run,
before Hydra starts.
"""

from __future__ import annotations

import importlib
import importlib.util

from unetcli.errors import UnetError

INSTALL = 'pip install "unetcli[cluster]"'

# Config option -> the modules it needs (the plugin, and the library it drives).
NEEDS: dict[str, tuple[str, ...]] = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sqlalchemy"),
    "hparams_search": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sqlalchemy"),
}


def _installed(name: str) -> bool:
    """Found on the path (without importing it: optuna alone takes a second)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if not _installed(name)]


def check_plugins(args: list[str]) -> None:
    """Raise UnetError naming the pip install when an argument asks for a plugin not installed."""
    for arg in args:
        choice = arg.lstrip("+~")
        for option, modules in NEEDS.items():
            group = option.split("=")[0]
            if choice == option or (option == group and choice.startswith(group + "=")):
                missing = _missing(modules)
                if missing:
                    raise UnetError(
                        f"{arg} needs Hydra plugins that are not installed here (missing: "
                        f"{', '.join(missing)}). Install them with {INSTALL} (launchers, the "
                        "Optuna search and the sweep summary plot), then run the command again."
                    )
