"""Segmentation losses. Each takes logits (N, C, H, W) and a mask (N, H, W) of class indices.

One output channel means a binary task (sigmoid); C > 1 channels mean C
classes (softmax). Each loss is one YAML file in conf/loss/.
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
