"""`unet plan`: measure this machine on the dataset, write dataset + experiment YAMLs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.core.console import print_summary
from unetcli.errors import user_errors
from unetcli.plan.planner import make_plan
from unetcli.training.fixed_costs import count_from_process_start


def run(cfg: DictConfig) -> dict:
    """Make and write the plan; prints where it went and how to train it."""
    plan = make_plan(cfg)
    out = cfg.plan.output_dir
    print_summary(
        "unet plan: done",
        [
            ("device", plan["device"]),
            (
                "chosen",
                f"{plan['model']} at {plan['size'][1]}x{plan['size'][0]}, batch "
                f"{plan['batch']}: {plan['images_per_s']:.3g} images/s measured",
            ),
            ("epochs", f"{plan['epochs']} for {cfg.plan.time_budget}"),
            ("wrote", ", ".join(plan["files"])),
            ("train", f"unet train --config-dir {out} experiment={plan['name']}"),
        ],
    )
    return plan


@hydra.main(config_path=config_dir(), config_name="plan", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    count_from_process_start()  # the plan's own start-up stands for `unet train`'s
    run(cfg)
