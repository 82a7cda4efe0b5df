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

# Importing albumentations otherwise asks the internet for a newer version.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

COMMANDS: dict[str, str] = {
    "download": "fetch a dataset from Kaggle (or generate the synthetic one) into dataset.root",
    "train": "train a model; writes checkpoints, TensorBoard logs and metrics.csv",
    "augment": "write a PNG grid of augmented training samples with their masks drawn on",
    "evaluate": "score a checkpoint on the validation split (metrics table, JSON, per-image CSV)",
    "predict": "segment test images and write a gzip RLE submission (Carvana format)",
}

# Hydra flags whose next argument is a value, never the command word.
_VALUE_FLAGS = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"}

USAGE = """usage: unet <command> [hydra options] [key=value ...]

commands:
{commands}

examples:
  unet train                                  train on the embedded synthetic dataset
  unet train -m optimizer.lr=1e-3,3e-4        sweep, one run folder per job
  unet evaluate checkpoint=outputs/train/<run>/checkpoints/best.pt
  unet predict checkpoint=outputs/train/<run>/checkpoints/best.pt
  unet <command> --help                       config groups and options of a command
  unet train --cfg job                        print the composed config
  unet train experiment=carvana_unet          run a recipe from conf/experiment/
  unet augment augmentation=carvana           look at augmented samples before training
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
    module = importlib.import_module(f"unetcli.commands.{command}")
    from unetcli.distributed.external import join_external_job

    sys.argv = [sys.argv[0], *rest, *join_external_job()]
    module.main()


if __name__ == "__main__":
    main()
