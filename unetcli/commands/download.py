"""`unet download`: make a dataset available in dataset.root.

The synthetic set is generated; Kaggle datasets are fetched by their layout's
`download` method (see the dataset's YAML). Layouts without one have nothing
to download.
"""

from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from unetcli.config_dir import config_dir
from unetcli.datasets.synthetic import SyntheticLayout
from unetcli.errors import user_errors
from unetcli.summary import print_summary


def run(cfg: DictConfig) -> None:
    layout = instantiate(cfg.dataset.layout)
    name = cfg.dataset.get("name", "dataset")
    if isinstance(layout, SyntheticLayout):
        existed = layout.root.exists()
        layout.prepare()
        status = "already present, nothing to do" if existed else "generated"
    elif hasattr(layout, "download"):
        status = layout.download(force=bool(cfg.download.force))
    else:
        status = "nothing to download: this dataset reads your own files in place"
    print_summary(f"unet download: {name}", [("folder", str(layout.root)), ("status", status)])


@hydra.main(config_path=config_dir(), config_name="download", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
