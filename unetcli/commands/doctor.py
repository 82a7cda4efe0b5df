"""`unet doctor`: read a dataset once and say how to train on it (doctor.json, doctor.png)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.doctor.findings import screen, write_json
from unetcli.doctor.fingerprint import analyse
from unetcli.doctor.picture import draw
from unetcli.errors import user_errors


def output_dir(cfg: DictConfig) -> Path:
    out = Path(cfg.doctor.output_dir or cfg.paths.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def given_overrides() -> list[str]:
    """The command line's overrides (to repeat the user's dataset.* ones); none in-process."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def run(cfg: DictConfig) -> dict:
    """Analyse, write doctor.json and doctor.png, print the screen; returns the report."""
    out = output_dir(cfg)
    analysis = analyse(cfg, out)
    json_path, png_path = out / "doctor.json", out / "doctor.png"
    write_json(analysis.report, json_path)
    ignore = analysis.options.get("dataset.ignore_index", cfg.dataset.ignore_index)
    draw(analysis.report, analysis.layout, analysis.samples, png_path, ignore)
    print(screen(analysis.report, [str(json_path), str(png_path)], given_overrides()))
    return analysis.report


@hydra.main(config_path=config_dir(), config_name="doctor", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
