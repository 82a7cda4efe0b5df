"""Segmentation losses. Each takes logits (N, C, H, W) and a mask (N, H, W) of class indices.

One output channel means a binary task (sigmoid); C > 1 channels mean C
classes (softmax). Each loss is one YAML file in conf/loss/.
"""

from unetcli.losses.bce import BCELoss
from unetcli.losses.combined import BCEDiceLoss
from unetcli.losses.dice import SoftDiceLoss

__all__ = ["BCELoss", "BCEDiceLoss", "SoftDiceLoss"]
