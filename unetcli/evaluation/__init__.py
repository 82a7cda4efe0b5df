"""What `unet evaluate` reports: per-image scores, a threshold sweep, pictures, a summary."""
