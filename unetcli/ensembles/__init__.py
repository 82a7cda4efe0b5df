"""Fold ensembles: which checkpoints make one (members) and how they are applied (recipe)."""
