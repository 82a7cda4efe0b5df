"""Every config value checked before any data or model is built, so a typo costs a second.

The YAML files are the schema: the type a key may hold is the type of the values the files in
conf/ give it (a float key takes a whole number too; a key some file sets to null may be
null). On top of that, a few keys carry a range or must name an existing file. Nothing here
states a default; unknown keys (added with +key=) are left to the code that reads them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_yaml_loader  # YAML 1.2 floats (1e-06), as Hydra reads
from omegaconf.errors import OmegaConfBaseException

from unetcli.config.location import config_dir
from unetcli.core.durations import seconds
from unetcli.errors import UnetError

# Structural keys and nodes whose checks belong to their own library (albumentations validates
# its transforms with strict=True when the pipeline is built).
UNCHECKED = ("hydra", "augmentation", "defaults")
MARKERS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
# Keys that must name an existing file or folder when set.
PATH_KEYS = (
    "checkpoint",
    "trainer.resume",
    "model.encoder_weights",
    "predict.input",
    "evaluate.submission",
    "evaluate.masks",
    "evaluate.images",
    "submission",
    "masks",
    "images",
    *(f"{node}.threshold_from" for node in ("predict", "evaluate", "export")),
)
# Keys the YAML leaves null (off) by default: what they take when set.
OPTIONAL_KINDS = {
    "trainer.grad_clip_norm": {"float"},
    "trainer.early_stopping.patience": {"int"},
    "trainer.max_steps_per_epoch": {"int"},
    "trainer.overfit_batches": {"int"},
    "dataset.validation_batch_size": {"int"},
    "dataset.ignore_index": {"int"},
    "dataset.crop_size": {"list"},
    "dataset.folds": {"int"},
    "dataset.fold": {"int", "str"},
    "ensemble": {"str", "list"},
    "evaluate.search_budget": {"float"},
    "loss.pos_weight": {"float"},
    # null lifts that limit of the tuning budget.
    "hardware.tune_budget.share": {"float"},
    # "auto" in the YAML, or a number.
    "hardware.threads": {"int", "str"},
    "hardware.num_workers": {"int", "str"},
    "score.threads": {"int", "str"},
    "images": {"str"},
    "logger.mlflow.tracking_uri": {"str"},
    "logger.wandb.entity": {"str"},
    # false, true, or the path of a weight file.
    "model.pretrained": {"bool", "str"},
    # null: from the pretrained encoder, else the generic default (models/input_stats.py).
    "dataset.mean": {"list"},
    "dataset.std": {"list"},
}
# The same for the keys of conf/inference.yaml, under each node that pulls it in.
INFERENCE_KINDS = {
    "batch_size": {"int"},
    "window": {"list"},
    "threshold_from": {"str"},
    "threads": {"int", "str"},
}
# Durations (2h, 90m, 1h30m, 40s or seconds): checked by the one parser, unetcli.core.durations.
DURATION_KEYS = (
    "trainer.time_budget", "trainer.checkpoint_every", "plan.time_budget",
    "hardware.tune_budget.seconds",
)  # fmt: skip
# Keys the YAML sets to auto that also take true or false (the YAML shows only the string).
AUTO_OR_BOOL = (
    "hardware.channels_last", "hardware.pin_memory", "hardware.compile",
    "hardware.sync_batchnorm",
)  # fmt: skip
# Numbers that may be negative (an ignore label such as -100 or -1).
NEGATIVE_OK = ("dataset.ignore_index",)
# (low, high) inclusive, with why, for values that are legal numbers but not sensible ones.
RANGES = {
    "dataset.validation_size": (
        0.0, 0.5, "a fraction of the labelled images; more than half for validation is almost "
        "always a typo (0.999 for 0.1)",
    ),
    "evaluate.thresholds": (0.0, 1.0, "probabilities"),
    "trainer.bad_steps_lr_factor": (0.0, 1.0, "a factor that lowers the learning rate"),
    "trainer.ema_decay": (0.0, 0.99999, "the share of the average kept at each step"),
}  # fmt: skip
INFERENCE_RANGES = {
    "threshold": (0.0, 1.0, "a probability; outside 0..1 every pixel is one class"),
    "overlap": (0.0, 0.95, "the fraction by which sliding windows overlap"),
}
# Words a key must be one of.
CHOICES = {
    "dataset.on_bad_file": ("stop", "skip"),
    "dataset.cache": ("auto", "memory", "disk", "off"),
    "trainer.monitor_mode": ("max", "min"),
}
# Counts where 0 means nothing would happen (a run of no epochs, batches of no images).
AT_LEAST_ONE = (
    "trainer.epochs", "trainer.batch_size", "dataset.in_channels", "dataset.num_classes",
    "dataset.validation_batch_size", "trainer.early_stopping.patience",
    "trainer.max_steps_per_epoch", "trainer.overfit_batches",
    "trainer.overfit_repeats", "predict.rows_per_member", "limits.max_image_pixels",
    "limits.max_csv_line_mb", "trainer.max_bad_steps", "score.worst",
    "trainer.accumulate_batches",
    *(f"{node}.batch_size" for node in ("predict", "evaluate", "export")),
)  # fmt: skip


def check_config(cfg: DictConfig) -> None:
    """Refuse the first bad value with one paragraph naming its key; the commands call this
    before building anything."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        raise UnetError(
            f"config key {getattr(err, 'full_key', '?')} cannot be resolved: "
            f"{str(err).splitlines()[0]}"
        ) from err
    kinds = yaml_kinds()
    # A value copied from another key (${dataset.in_channels}) is reported at its source.
    raw = dict(leaves(OmegaConf.to_container(cfg, resolve=False)))
    for key, value in leaves(values):
        if isinstance(raw.get(key), str) and raw[key].startswith("${"):
            continue
        problem = value_problem(key, value, kinds.get(key))
        if problem:
            raise UnetError(
                f"config key {key}={value!r} is not valid: {problem}. Set it on the command "
                f"line ({key}=...) or in the YAML; `unet <command> --cfg job` prints them all."
            )


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every checked leaf; lists are leaves."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in MARKERS or (not prefix and key in UNCHECKED):
                continue
            yield from leaves(value, f"{prefix}{key}.")
    elif prefix:
        yield prefix[:-1], node


def value_problem(key: str, value: Any, kinds: set[str] | None) -> str | None:
    """Why `value` is wrong for `key`, or None."""
    if value == "???":  # not given: the command that needs it says so (evaluate.submission
        return None  # needs no checkpoint)
    if isinstance(value, str) and not value.strip() and "empty" not in (kinds or ()):
        return "it is an empty string"
    stated = sorted((kinds or set()) - {"none", "empty"})
    if value is None:
        return None if not stated or "none" in kinds else f"it must be a {' or '.join(stated)}"
    kind = kind_of(value)
    widened = kind == "int" and "float" in stated
    if stated and kind not in stated and kind != "empty" and not widened:
        return f"it must be a {' or '.join(stated)}, not a {kind}"
    if key in CHOICES and value not in CHOICES[key]:
        return f"it must be one of {', '.join(CHOICES[key])}"
    return number_problem(key, value) or path_problem(key, value) or duration_problem(key, value)


def duration_problem(key: str, value: Any) -> str | None:
    if key not in DURATION_KEYS:
        return None
    try:
        seconds(value, key)
    except UnetError:
        return "it must be a duration: 2h, 90m, 1h30m, 40s or a number of seconds, more than 0"
    return None


def number_problem(key: str, value: Any) -> str | None:
    numbers = value if isinstance(value, list) else [value]
    numbers = [v for v in numbers if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for number in numbers:
        if not math.isfinite(number):
            return "it must be a finite number"
        if number < 0 and key not in NEGATIVE_OK:
            return "it must not be negative"
        if key in AT_LEAST_ONE and number < 1:
            return "it must be at least 1"
        ranged = RANGES.get(key) or _inference_range(key)
        if ranged:
            low, high, what = ranged
            if not low <= number <= high:
                return f"it must lie in {low}..{high} ({what})"
    return None


def path_problem(key: str, value: Any) -> str | None:
    if key in PATH_KEYS and isinstance(value, str) and not Path(value).exists():
        return f"{value} does not exist (no such file or folder)"
    return None


def kind_of(value: Any) -> str:
    if value is None:
        return "none"
    if value == "":
        return "empty"  # a key whose YAML states "" may be empty
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str, list, dict)):
        return {int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(value)]
    return type(value).__name__


def _inference_range(key: str) -> tuple | None:
    node, _, name = key.partition(".")
    return INFERENCE_RANGES.get(name) if node in inference_nodes() else None


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=get_yaml_loader())  # noqa: S506  (safe loader)


@functools.cache
def inference_nodes() -> tuple[str, ...]:
    """The nodes that pull conf/inference.yaml in (`- inference@predict`): predict, ..."""
    nodes = []
    for path in sorted(Path(config_dir()).glob("*.yaml")):
        for entry in (_load(path) or {}).get("defaults", []):
            if isinstance(entry, str) and entry.startswith("inference@"):
                nodes.append(entry.partition("@")[2])
    return tuple(nodes)


@functools.cache
def yaml_kinds() -> dict[str, set[str]]:
    """Key -> the kinds of value the YAML files in conf/ give it (interpolations aside)."""
    root = Path(config_dir())
    kinds: dict[str, set[str]] = {}
    shared = {"inference": [f"{node}." for node in inference_nodes()]}
    for path in sorted(root.rglob("*.yaml")):
        group = path.parent.relative_to(root).as_posix()
        top = group == "." or "@package _global_" in path.read_text()
        prefixes = shared.get(path.stem, [""]) if top else [group.replace("/", ".") + "."]
        node = _load(path)
        for prefix in prefixes:
            for key, value in leaves(node, prefix) if isinstance(node, dict) else ():
                if not (isinstance(value, str) and "${" in value):
                    kinds.setdefault(key, set()).add(kind_of(value))
    shared_kinds = {f"{n}.{k}": v for n in inference_nodes() for k, v in INFERENCE_KINDS.items()}
    for key, stated in {**OPTIONAL_KINDS, **shared_kinds}.items():
        kinds.setdefault(key, set()).update({*stated, "none"})
    for key in AUTO_OR_BOOL:
        kinds.setdefault(key, set()).add("bool")
    for key in DURATION_KEYS:
        kinds.setdefault(key, set()).update({"int", "float", "str", "none"})
    return kinds
