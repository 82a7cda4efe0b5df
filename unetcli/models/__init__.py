"""Segmentation models, each buildable from a YAML file in conf/model/."""

from unetcli.models.unet import UNet

__all__ = ["UNet"]
