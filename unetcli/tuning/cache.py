"""Remembering tuning results, so the second run with the same settings starts at once.

One JSON file per key under $XDG_CACHE_HOME/unetcli/tuning (~/.cache when the
variable is unset). The key is a hash of everything the answer depends on:
device name, torch version, model config, input size, batch, candidates, mode.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from unetcli.core.cpus import usable_cores


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unetcli" / "tuning"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and the cores this process may use."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {usable_cores()} cores"


def cache_key(fields: dict[str, Any]) -> str:
    text = json.dumps({"torch": torch.__version__, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(key: str) -> dict | None:
    path = cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save(key: str, record: dict) -> None:
    """Write atomically (temporary name, then rename); a cache that cannot be written is skipped."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        pass
