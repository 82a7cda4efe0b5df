"""`unet download`: make a dataset available in dataset.root.

The synthetic set is generated; datasets with a `kaggle` node in their YAML
are fetched with the official kaggle client (unetcli.download); others (e.g.
dataset=folder, the user's own files) have nothing to download.
"""

from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.core.console import print_summary
from unetcli.core.limits import apply_limits
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.errors import UnetError, user_errors


def run(cfg: DictConfig) -> str:
    """Download (or generate) cfg.dataset; returns the status line of the summary."""
    apply_limits(cfg.limits)
    name = cfg.dataset.get("name", "dataset")
    if cfg.dataset.get("kaggle") is not None:
        from unetcli.download import download

        opts = cfg.download
        try:
            outcome = download(
                cfg.dataset,
                force=bool(opts.force),
                retries=int(opts.retries),
                keep_archives=bool(opts.keep_archives),
            )
        except KeyboardInterrupt:
            raise UnetError(
                f"interrupted. Nothing incomplete was left in {cfg.dataset.root} for training to "
                "use; what was fetched is kept in its .unet-download/ folder and the next "
                "`unet download` with the same dataset=... resumes it."
            ) from None
        print_summary(f"unet download: {name}", [*outcome.rows, ("status", outcome.status)])
        return outcome.status
    layout = instantiate(cfg.dataset.layout)
    if isinstance(layout, SyntheticLayout):
        existed = layout.root.exists()
        layout.prepare()
        status = "already present, nothing to do" if existed else "generated"
    else:
        status = (
            "nothing to download: this dataset reads your own files in place "
            "(images/ and masks/ in dataset.root)"
        )
    print_summary(f"unet download: {name}", [("folder", str(layout.root)), ("status", status)])
    return status


@hydra.main(config_path=config_dir(), config_name="download", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
