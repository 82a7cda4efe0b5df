"""Building objects from config nodes (`_target_`), with errors that name the config key."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from unetcli.errors import UnetError


def build(node: DictConfig, key: str, *args: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` that reports a bad `_target_` or argument by config key."""
    try:
        return instantiate(node, *args, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, UnetError):  # the object's own paragraph already names its key
            raise cause from None
        raise UnetError(f"cannot build `{key}` from its config: {cause}") from err
