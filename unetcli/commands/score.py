"""`unet score SUBMISSION masks=DIR`: score a Kaggle-format submission against true masks.

No model is involved: each row is decoded against its mask and scored as `unet evaluate`
scores a prediction (unetcli.evaluation.scored_submission), into the same report files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from unetcli.config.location import config_dir
from unetcli.config.overrides import bare_argument_as
from unetcli.config.schema import check_config
from unetcli.core.limits import apply_limits
from unetcli.errors import user_errors
from unetcli.evaluation.scored_submission import SubmissionFiles, score_submission
from unetcli.inference.options import resolve_threads


def run(cfg: DictConfig) -> dict:
    """Score `submission` against `masks`; what metrics.json holds."""
    apply_limits(cfg.limits)
    check_config(cfg)
    files = SubmissionFiles(
        Path(str(cfg.submission)), Path(str(cfg.masks)), Path(cfg.images) if cfg.images else None
    )
    threads = resolve_threads(cfg.score.threads, "score.threads")
    return score_submission(files, Path(cfg.paths.run_dir), int(cfg.score.worst), threads)


@hydra.main(config_path=config_dir(), config_name="score", version_base="1.3")
@user_errors
def _main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """A bare argument is the submission: `unet score SUBMISSION masks=DIR`."""
    sys.argv = [sys.argv[0], *bare_argument_as("submission", sys.argv[1:])]
    _main()
