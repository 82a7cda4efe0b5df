"""Segmentation models, each buildable from a YAML file in conf/model/.

Each is a `SegmentationModel` (models/contract.py): training and inference
read only that contract, never a model's own attributes such as its depth.
"""

from unetcli.models.contract import SegmentationModel
from unetcli.models.resnet import ResNetEncoder
from unetcli.models.unet import UNet
from unetcli.models.unet_original import UNetOriginal
from unetcli.models.unet_resnet import UNetResNet
from unetcli.models.unet_timm import UNetTimm

__all__ = ["ResNetEncoder", "SegmentationModel", "UNet", "UNetOriginal", "UNetResNet", "UNetTimm"]
