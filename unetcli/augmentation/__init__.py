"""Augmentation beyond the YAML presets: our own transforms, the preview grid, copies on disk."""
