"""Per-image segmentation metrics."""

from unetcli.metrics.segmentation import METRIC_NAMES, per_image_metrics, predict_labels

__all__ = ["METRIC_NAMES", "per_image_metrics", "predict_labels"]
