"""The `unet` entry point: picks the command word out of argv and hands the rest to Hydra.

Hydra has no sub-commands, so each command is its own `@hydra.main` function with
its own primary config. This module finds the command word (skipping the values
of Hydra flags such as `-cn`), removes it, and calls that command, so that
`unet train -m a=1,2` and `unet -m train a=1,2` both work, and shell completion
(`unet train -sc install=bash`) completes each command's own config.
"""

from __future__ import annotations

import importlib
import os
import sys

from unetcli.errors import UnetError, report
from unetcli.sweeps.plugins import check_plugins

# Importing albumentations otherwise asks the internet for a newer version.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Optuna 2.x (the sweeper's) warns about SQLAlchemy 2.0 on every start; the pin keeps 1.4.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

COMMANDS: dict[str, str] = {
    "download": "fetch a dataset from Kaggle (or generate the synthetic one) into dataset.root",
    "doctor": "read your dataset once: pairing, mask encoding, sizes, objects, the options to use",
    "plan": "measure this machine and write dataset + experiment YAMLs for a time budget",
    "train": "train a model; writes checkpoints, TensorBoard logs and metrics.csv",
    "augment": "PNG grid of augmented samples, masks drawn on (or augmented copies on disk)",
    "evaluate": "score a checkpoint on the validation split (metrics table, JSON, per-image CSV)",
    "predict": "segment test images and write a gzip RLE submission (Carvana format)",
    "score": "score a submission file against a folder of true masks (no model needed)",
    "export": "write model.onnx + model.pt2 + inference.json for a checkpoint, verified",
    "sweep-summary": "rebuild summary.csv and summary.png of a sweep folder (running or stopped)",
}

# Hydra flags whose next argument is a value, never the command word.
_VALUE_FLAGS = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"}

USAGE = """usage: unet <command> [hydra options] [key=value ...]

commands:
{commands}

examples:
  unet train                                  train on the embedded synthetic dataset
  unet train -m optimizer.lr=1e-3,3e-4        sweep, one run folder per job
  unet train -m hparams_search=unet_optuna    Optuna search (pip install "unetcli[cluster]")
  unet sweep-summary outputs/train-multirun/<sweep>   summary.csv/png of a sweep
  unet evaluate checkpoint=outputs/train/<run>/checkpoints/best.pt
  unet predict checkpoint=outputs/train/<run>/checkpoints/best.pt
  unet score outputs/predict/<run>/submission.csv.gz masks=DIR   score it against true masks
  unet export checkpoint=outputs/train/<run>/checkpoints/best.pt
  unet <command> --help                       config groups and options of a command
  unet train --cfg job                        print the composed config
  unet train experiment=carvana_unet          run a recipe from conf/experiment/
  unet augment augmentation=carvana           look at augmented samples before training
  unet doctor dataset=folder dataset.root=DIR what is in your own data, and how to read it
  unet plan dataset=folder dataset.root=DIR   measure this machine, write ./unet-conf YAMLs
"""


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def split_command(args: list[str]) -> tuple[str | None, list[str]]:
    """Return (command word, remaining args); the word is None if there is none.

    The command word is the first argument that is neither a flag, the value of
    a value-taking flag, nor a `key=value` override.
    """
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if arg in _VALUE_FLAGS:
            skip_next = True
            continue
        if arg.startswith("-") or "=" in arg:
            continue
        return arg, args[:i] + args[i + 1 :]
    return None, list(args)


def _completion_query(args: list[str]) -> bool:
    return any(a.startswith("query=") for a in args) and any(
        a in ("-sc", "--shell-completion") for a in args
    )


def _complete_command_word() -> str | None:
    """During shell completion, find the command in COMP_LINE and strip it.

    Returns the command, or None after printing the command names that match
    the word being typed.
    """
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    rest = words[1:]
    typing_word = not line.endswith(" ")
    command, remaining = split_command(rest[:-1] if typing_word and rest else rest)
    if command in COMMANDS:
        os.environ["COMP_LINE"] = " ".join([words[0], *remaining]) + (
            " " + rest[-1] if typing_word and rest else " "
        )
        return command
    prefix = rest[-1] if typing_word and rest else ""
    print(" ".join(name for name in COMMANDS if name.startswith(prefix)))
    return None


def main(argv: list[str] | None = None) -> None:
    """Run `unet <command> ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _completion_query(args):
        command = _complete_command_word()
        if command is None:
            return
        rest = args
    else:
        command, rest = split_command(args)
    if command is None:
        print(usage())
        sys.exit(0 if any(a in ("-h", "--help") for a in args) else 2)
    if command not in COMMANDS:
        print(f"unet: unknown command '{command}'\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        sys.exit(2)
    try:
        check_plugins(rest)
    except UnetError as err:
        report(str(err))
        sys.exit(1)
    module = importlib.import_module(f"unetcli.commands.{command.replace('-', '_')}")
    from unetcli.distributed.external import (
        end_external_process,
        join_external_job,
        leave_external_job,
    )

    sys.argv = [sys.argv[0], *rest, *join_external_job()]
    module.main()
    leave_external_job()
    if argv is None:  # a real process, not a call from Python: end it at once (see there)
        end_external_process()


if __name__ == "__main__":
    main()
