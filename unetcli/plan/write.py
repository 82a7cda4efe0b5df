"""The plan on disk: a dataset YAML and an experiment YAML, each choice with its reason.

They go into the user's own config folder (plan.output_dir), never into the
package, so `unet train --config-dir DIR experiment=NAME` trains the plan and
the user can read, edit and keep it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _line(key: str, value: object, reason: str, indent: str = "") -> str:
    """`key: value  # reason`; JSON scalars and lists are valid YAML flow values."""
    return f"{indent}{key}: {json.dumps(value)}  # {reason}"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def dataset_yaml(name: str, options: dict[str, object], reasons: dict[str, str]) -> str:
    """`defaults: [folder]` plus the options, `dataset.layout.x` keys under `layout:` (and
    `dataset.intensity.x` under `intensity:`)."""
    lines = [
        f"# Written by `unet plan` for {name}; each line says why.",
        "defaults:",
        "  - folder",
        "  - _self_",
        "",
        _line("name", name, "plan.name"),
    ]
    nodes: dict[str, dict[str, object]] = {"": {}}
    for key, value in options.items():
        if key.startswith("dataset."):
            node, _, leaf = key[len("dataset.") :].rpartition(".")
            nodes.setdefault(node, {})[leaf] = value
    lines += [
        _line(k, v, reasons.get(f"dataset.{k}", "found by unet doctor"))
        for k, v in nodes.pop("").items()
    ]
    for node, keys in nodes.items():  # layout:, intensity: (one level deep)
        lines.append(f"{node}:")
        lines += [
            _line(k, v, reasons.get(f"dataset.{node}.{k}", "found by unet doctor"), "  ")
            for k, v in keys.items()
        ]
    return "\n".join(lines) + "\n"


def experiment_yaml(
    name: str,
    groups: dict[str, tuple[str, str]],
    keys: dict[str, tuple[object, str]],
    header: list[str],
) -> str:
    """`# @package _global_`, the group choices, then `section.key: value  # reason` lines."""
    lines = ["# @package _global_", *[f"# {h}" for h in header], "defaults:"]
    lines += [
        f"  - override /{group}: {choice}  # {why}" for group, (choice, why) in groups.items()
    ]
    sections: dict[str, list[str]] = {}
    for key, (value, why) in keys.items():
        section, leaf = key.split(".", 1)
        sections.setdefault(section, []).append(_line(leaf, value, why, "  "))
    for section, body in sections.items():
        lines += ["", f"{section}:", *body]
    return "\n".join(lines) + "\n"
