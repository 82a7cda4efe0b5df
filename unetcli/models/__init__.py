"""Segmentation models, each buildable from a YAML file in conf/model/."""

from unetcli.models.resnet import ResNetEncoder
from unetcli.models.unet import UNet
from unetcli.models.unet_original import UNetOriginal
from unetcli.models.unet_resnet import UNetResNet

__all__ = ["ResNetEncoder", "UNet", "UNetOriginal", "UNetResNet"]
