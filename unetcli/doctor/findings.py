"""What the doctor tells the user: one screen of findings, doctor.json, the train command."""

from __future__ import annotations

import json
import os
from pathlib import Path


def override(key: str, value: object) -> str:
    """One `key=value` Hydra override (lists as [a,b])."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list | tuple):
        text = "[" + ",".join(str(v) for v in value) + "]"
    else:
        text = str(value)
    return f"{key}={text}"


def _quoted(word: str) -> str:
    return f"'{word}'" if "[" in word or " " in word else word


def train_command(report: dict, given: list[str]) -> str:
    """`unet train` with the dataset overrides the user gave, then the doctor's options."""
    options = report["options"]
    dataset = report["dataset"]
    words = [f"dataset={dataset['name']}", f"dataset.root={dataset['root']}"]
    words += [
        _quoted(w)
        for w in given
        if w.startswith("dataset.") and w.split("=", 1)[0] not in ("dataset.root", *options)
    ]
    words += [_quoted(override(k, v)) for k, v in options.items()]
    return "unet train " + " ".join(words)


def write_json(report: dict, path: Path) -> None:
    """doctor.json, written to a temporary name and renamed (never half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    os.replace(tmp, path)


def _pairing_lines(pairing: dict | None) -> list[str]:
    if pairing is None:
        return []
    lines = [
        f"pairing      {pairing['paired']} of {pairing['images']} images have a mask "
        f"({_counts(pairing['image_extensions'])} images, "
        f"{_counts(pairing['mask_extensions'])} masks)"
    ]
    lines += [f"  near miss  {m}" for m in pairing["near_misses"]]
    for label, names in (
        ("no mask", pairing["without_mask"]),
        ("no image", pairing["without_image"]),
    ):
        if names:
            lines.append(f"  {label:<9}  {len(names)}: {', '.join(names[:3])}")
    return lines


def _counts(found: dict) -> str:
    return ", ".join(f"{n} {k}" for k, n in found.items())


def _tally(found: dict) -> str:
    return ", ".join(f"{k} ({n})" for k, n in found.items())


def _shares(found: dict) -> str:
    return ", ".join(f"{k}: {100 * v:.1f}%" for k, v in found.items())


def screen(report: dict, outputs: list[str], given: list[str]) -> str:
    """The one-screen report: findings, then the command that trains on them."""
    images, objects, enc = report["images"], report["objects"], report["encoding"]
    dup = report["duplicates"]
    lines = ["unet doctor: " + report["dataset"]["root"], *_pairing_lines(report["pairing"])]
    lines += [
        f"masks        {enc['name']}: {enc['detail']}",
        f"images       {images['count']}; sizes {_tally(images['sizes'])}"
        f" ({images['distinct_sizes']} distinct); channels {_tally(images['channels'])}; "
        f"bits {_tally(images['bits'])}",
    ]
    found = images.get("intensity")
    if found:
        lines.append(
            f"  intensity  {found['mode']}: {found['why']}; {found['percentiles']} percentiles "
            f"per channel: low {found['low']}, high {found['high']}"
        )
    if images["mean"] is not None:
        lines.append(f"  normalise  mean {images['mean']} std {images['std']}")
    if images["not_divisible_by_16"]:
        lines.append(
            f"  note       {images['not_divisible_by_16']} images have a side not "
            "divisible by 16 (they are resized or padded for the U-Net)"
        )
    planned = objects["planned_size"]
    at = f"at {planned[1]}x{planned[0]}" if planned else "at full size"
    lines += [
        f"classes      pixel share by class {_shares(objects['class_frequency'])}",
        f"objects      {objects['objects_per_image']} per image {at}; median "
        f"{objects['median_area']} px, smallest {objects['smallest_areas']} px",
        f"duplicates   {len(dup['within'])} groups within the set, "
        f"{len(dup['train_test'])} test images also labelled",
    ]
    if report["problems"]:
        shown = "; ".join(report["problems"][:3])
        lines.append(f"left out     {len(report['problems'])} images: {shown}")
    if objects["smallest_areas"] and objects["smallest_areas"][0] < 9:
        lines.append(
            "  warning    objects under 3x3 px at the planned size may vanish: train "
            "larger (dataset.image_size) or on crops"
        )
    lines += ["", "train with:", "  " + train_command(report, given), ""]
    lines += [f"wrote        {o}" for o in outputs]
    return "\n".join(lines)
