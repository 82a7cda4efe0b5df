"""From the doctor's fingerprint and measured steps to the two YAML files of a plan."""

from __future__ import annotations

import copy
import json
import math
import re
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from unetcli.config.location import config_dir
from unetcli.core.durations import seconds
from unetcli.core.hardware import resolve_hardware
from unetcli.doctor.fingerprint import analyse, with_options
from unetcli.errors import UnetError
from unetcli.plan.models import model_config, widths
from unetcli.plan.search import Candidate, search, sizes
from unetcli.plan.write import atomic_write, dataset_yaml, experiment_yaml
from unetcli.training.fixed_costs import run_start


def output_dir(cfg: DictConfig) -> Path:
    """plan.output_dir, refused inside the installed package (configs there are not the user's)."""
    out = Path(cfg.plan.output_dir).expanduser().resolve()
    package = Path(__file__).resolve().parents[1]
    for inside in (package, Path(config_dir()).resolve()):
        if out == inside or inside in out.parents:
            raise UnetError(
                f"plan.output_dir={out} is inside the unetcli package; write the plan "
                "to a folder of your own, e.g. plan.output_dir=./unet-conf"
            )
    return out


def plan_name(cfg: DictConfig) -> str:
    """plan.name, else the dataset folder's name; never a name the package already uses."""
    name = cfg.plan.name or Path(str(cfg.dataset.root)).resolve().name
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "mydata"
    taken = any(
        (Path(config_dir()) / g / f"{name}.yaml").is_file() for g in ("dataset", "experiment")
    )
    return f"{name}_own" if taken else name


def _measure(
    cfg: DictConfig, report: dict, budget_s: float, started: float
) -> tuple[Candidate, list, dict]:
    images = report["images"]
    areas = report["objects"]["areas"]
    smallest = float(np.percentile(areas, 5)) if areas else 0.0
    train_images = max(1, round(images["count"] * (1 - float(cfg.dataset.validation_size))))
    shapes, crop = sizes(tuple(images["median_size"]), smallest, cfg.plan)
    models = {
        m: model_config(m, int(cfg.dataset.in_channels), int(cfg.dataset.num_classes))
        for m in cfg.plan.models
    }
    candidates = [Candidate(m, s, crop) for s in shapes for m in cfg.plan.models]
    limits = {
        "train_images": train_images,
        "budget_s": budget_s,
        # What this process took to start and read the data: `unet train` pays as much
        # before its first step (imports, config, the file check).
        "start_up_s": time.time() - started,
        "models": models,
        "deadline": time.monotonic() + float(cfg.plan.measure_s),
    }
    runtime = resolve_hardware(cfg.hardware)
    chosen, done = search(cfg, runtime, limits, candidates)
    facts = {
        "start_up_s": limits["start_up_s"],
        "smallest_area": smallest,
        "train_images": train_images,
        "models": models,
        "device": runtime.describe(),
        "native": images["median_size"],
    }
    return chosen, done, facts


def make_plan(cfg: DictConfig) -> dict:
    """Analyse, measure, choose and write; returns what was chosen and where it went."""
    started = run_start()  # under `unet plan`, the process's start: its imports count
    cfg = copy.deepcopy(cfg)
    given = given_options(cfg.dataset)
    budget_s = seconds(cfg.plan.time_budget, "plan.time_budget")
    out, name = output_dir(cfg), plan_name(cfg)
    files = [out / "dataset" / f"{name}.yaml", out / "experiment" / f"{name}.yaml"]
    existing = [str(f) for f in files if f.exists()]
    if existing and not cfg.plan.overwrite:
        raise UnetError(
            f"{', '.join(existing)} already exist; choose plan.name=OTHER, "
            "or plan.overwrite=true to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.update(cfg, "dataset.image_size", None)  # objects measured at their own size
    analysis = analyse(cfg, out)
    cfg = with_options(cfg, analysis.options)
    chosen, done, facts = _measure(cfg, analysis.report, budget_s, started)
    facts["given"] = given
    options, reasons = _dataset_choices(analysis, chosen, facts)
    atomic_write(files[0], dataset_yaml(name, options, reasons))
    groups, keys, header = _experiment_choices(cfg, analysis.report, chosen, done, facts)
    groups["dataset"] = (name, f"{out / 'dataset' / name}.yaml, written with this file")
    atomic_write(files[1], experiment_yaml(name, groups, keys, header))
    measured = [
        dict(
            model=r.model,
            size=list(r.size),
            batch=r.batch,
            step_s=r.step_s,
            images_per_s=r.images_per_s,
            peak_bytes=r.peak_bytes,
            state_bytes=r.state_bytes,
            failed=r.failed,
        )
        for c in done
        for r in c.runs
    ]
    summary = {
        "name": name,
        "files": [str(f) for f in files],
        "model": chosen.model,
        "size": list(chosen.size),
        "crop": chosen.crop,
        "batch": chosen.batch.batch,
        "epochs": chosen.epochs,
        "images_per_s": chosen.batch.images_per_s,
        "budget_s": budget_s,
        "start_up_s": facts["start_up_s"],
        "device": facts["device"],
        "measured": measured,
    }
    atomic_write(out / f"{name}.plan.json", json.dumps(summary, indent=1))
    return summary


#: Dataset keys a user may set on the plan's command line, carried into the dataset YAML.
GIVEN_KEYS = (
    "task",
    "num_classes",
    "ignore_index",
    "validation_size",
    "in_channels",
    "layout.images",
    "layout.masks",
    "layout.test",
    "layout.mask_suffix",
    "layout.class_csv",
    "layout.threshold",
    "layout.class_folders",
    "layout.palette",
    "layout.mask_values",
)


def given_options(dataset_cfg: DictConfig) -> dict[str, object]:
    """The user's own dataset settings: GIVEN_KEYS that differ from conf/dataset/folder.yaml."""
    defaults = OmegaConf.load(Path(config_dir()) / "dataset" / "folder.yaml")
    given = {}
    for key in GIVEN_KEYS:
        value = OmegaConf.select(dataset_cfg, key, throw_on_missing=False)
        if value != OmegaConf.select(defaults, key):
            plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            given[f"dataset.{key}"] = plain
    return given


def _dataset_choices(analysis, chosen: Candidate, facts: dict) -> tuple[dict, dict]:
    options = {
        "dataset.root": str(analysis.layout.root),
        **facts["given"],
        **analysis.options,
        "dataset.image_size": None if chosen.crop else list(chosen.size),
    }
    height, width = facts["native"]
    scale = 1.0 if chosen.crop else chosen.size[0] / height
    side = math.sqrt(facts["smallest_area"]) * scale
    count = analysis.report["images"]["count"]
    if chosen.crop:
        options["dataset.crop_size"] = chosen.size[0]
        options["dataset.validation_batch_size"] = 1
    reasons = {
        "dataset.crop_size": f"resizing the {width}x{height} images (median) to at most "
        "plan.max_side would shrink the smallest objects under plan.min_object_side: train on "
        "random crops at full resolution",
        "dataset.validation_batch_size": "validation sees whole images, whose sizes may differ",
        "dataset.root": "the folder unet doctor read",
        "dataset.image_size": f"images are {width}x{height} (median); at this size the smallest "
        f"objects (5th percentile) are about {side:.0f} px wide"
        + (" (null: full resolution, cropped)" if chosen.crop else ""),
        "dataset.mean": f"measured over the {count} labelled images (0..1 units)",
        "dataset.std": f"measured over the {count} labelled images (0..1 units)",
        "dataset.in_channels": "the channels every image has",
        "dataset.intensity.mode": (analysis.report["images"].get("intensity") or {}).get(
            "why", "recommended by unet doctor"
        ),
        "dataset.intensity.range": "the set's 0.5-99.5 percentiles per channel",
        "dataset.num_classes": f"masks: {analysis.report['encoding']['name']}",
    }
    return options, reasons


def _experiment_choices(cfg, report, chosen: Candidate, done: list, facts: dict):
    run = chosen.batch
    rates = "; ".join(
        f"{c.model} {c.size[1]}x{c.size[0]}: {c.batch.images_per_s:.3g} img/s ({c.epochs} epochs)"
        for c in done
    )
    model_cfg = facts["models"][chosen.model]
    header = [
        f"Written by `unet plan` for a budget of {cfg.plan.time_budget} on {facts['device']}.",
        f"Measured (training steps, batch that was chosen): {rates}.",
    ]
    why_model = (
        f"{widths(model_cfg)}: {run.images_per_s:.3g} images/s here leaves {chosen.epochs} "
        f"epochs of {facts['train_images']} training images in {cfg.plan.time_budget}"
    )
    wider = [c for c in done if c is not chosen and c.size == chosen.size]
    if wider:
        why_model += "; " + ", ".join(f"{c.model} only {c.epochs}" for c in wider)
        why_model += f" (plan.min_epochs {cfg.plan.min_epochs})"
    loss, why_loss = _loss(cfg, report)
    groups = {"model": (chosen.model, why_model), "loss": (loss, why_loss)}
    keys = {
        "trainer.epochs": (
            chosen.epochs,
            f"{cfg.plan.time_budget} at {run.images_per_s:.3g} "
            f"images/s, {int(100 * float(cfg.plan.validation_share))}% kept "
            "for validation",
        ),
        "trainer.batch_size": (run.batch, _why_batch(chosen, cfg)),
    }
    if chosen.crop and report["images"]["distinct_sizes"] > 1:
        keys["trainer.log_images"] = (0, "the example grid needs images of one size")
    return groups, keys, header


def _why_batch(chosen: Candidate, cfg: DictConfig) -> str:
    run = chosen.batch
    tried = ", ".join(
        f"{r.batch}: {'out of memory' if r.failed else f'{r.images_per_s:.3g}/s'}"
        for r in chosen.runs
    )
    memory = f", peak {run.peak_bytes / 2**30:.1f} GiB" if run.peak_bytes else ""
    return (
        f"smallest batch within 10% of the best rate (tried {tried}){memory}; "
        f"memory margin {int(100 * float(cfg.plan.memory_margin))}%"
    )


def _loss(cfg: DictConfig, report: dict) -> tuple[str, str]:
    share = 1 - float(report["objects"]["class_frequency"].get("0", 0.0))
    if share < float(cfg.plan.imbalance):
        return "bce_dice", (
            f"objects cover {100 * share:.1f}% of the pixels: the Dice term keeps "
            "the rare class from being ignored"
        )
    kind = "ce" if int(cfg.dataset.num_classes) > 1 and cfg.dataset.task != "multilabel" else "bce"
    return kind, f"objects cover {100 * share:.1f}% of the pixels: classes are balanced enough"
