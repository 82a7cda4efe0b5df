"""The training loop and what it writes: checkpoints, metrics.csv, TensorBoard."""
