"""Segmentation losses, built as `LossClass(task, **yaml_keys)`.

Each takes logits (N, C, H, W) and a target that fits the task: (N, H, W)
class indices for binary and multiclass tasks, (N, C, H, W) 0/1 planes for
multilabel ones; pixels equal to `task.ignore_index` count in no loss. A
loss that cannot train a task refuses it when it is built. Each loss is one
YAML file in conf/loss/, built with
`unetcli.config.instantiate.build(cfg.loss, "loss", task=task)`.
"""

from unetcli.losses.bce import BCELoss
from unetcli.losses.ce import CrossEntropyLoss
from unetcli.losses.combined import BCEDiceLoss
from unetcli.losses.dice import SoftDiceLoss
from unetcli.losses.focal import FocalLoss
from unetcli.losses.jaccard import SoftJaccardLoss
from unetcli.losses.lovasz import LovaszLoss
from unetcli.losses.weight_map import WeightMapCache, unet_weight_map
from unetcli.losses.weighted_ce import WeightedCrossEntropyLoss

__all__ = [
    "BCELoss",
    "BCEDiceLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LovaszLoss",
    "SoftDiceLoss",
    "SoftJaccardLoss",
    "WeightMapCache",
    "WeightedCrossEntropyLoss",
    "unet_weight_map",
]
