"""Using a trained checkpoint: rebuilding it, and writing what it predicts."""
