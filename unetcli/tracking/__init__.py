"""Experiment trackers beside the run folder: TensorBoard, metrics.csv, MLflow, W&B."""
