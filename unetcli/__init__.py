"""unetcli: train, evaluate and apply U-Net segmentation models from YAML configs."""

__version__ = "0.1.0"
