"""Using trained checkpoints: restoring them (`predictor.py`), the one loop from images to
probabilities at their original size (`engine.py`), and what predict writes."""
