"""`unet sweep-summary DIR`: rebuild a sweep's summary.csv and summary.png from its job folders."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.config.overrides import bare_argument_as, unquoted
from unetcli.errors import UnetError, report, user_errors
from unetcli.sweeps.summary import SweepRows, summarise


def run(cfg: DictConfig) -> SweepRows:
    """Summarise the sweep folder `sweep_summary.dir`; an error if it holds no job."""
    sweep_dir = Path(cfg.sweep_summary.dir)
    summary = summarise(sweep_dir)
    if summary is None:
        raise UnetError(
            f"sweep_summary.dir={sweep_dir} holds no sweep job (no folder with a .hydra/ inside). "
            "Give the folder of a multirun, e.g. outputs/train-multirun/<time>."
        )
    return summary


@hydra.main(config_path=config_dir(), config_name="sweep_summary", version_base="1.3")
@user_errors
def _main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """A bare argument is the sweep folder: `unet sweep-summary DIR`."""
    args = bare_argument_as("sweep_summary.dir", sys.argv[1:])
    for arg in args:  # Hydra would make the folder (it is the run folder) before run() looks
        key, _, value = arg.partition("=")
        if key == "sweep_summary.dir" and not Path(unquoted(value)).is_dir():
            report(f"sweep_summary.dir={value} is not a folder; give the folder of a multirun, "
                   "e.g. outputs/train-multirun/<time>.")
            sys.exit(1)
    sys.argv = [sys.argv[0], *args]
    _main()
