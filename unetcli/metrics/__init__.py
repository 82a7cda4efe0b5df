"""Per-image segmentation metrics."""

from unetcli.metrics.segmentation import METRIC_NAMES, per_image_metrics

__all__ = ["METRIC_NAMES", "per_image_metrics"]
