"""The inference recipe: chosen on out-of-fold probabilities, saved as recipe.yaml, applied
by `unet predict recipe=...` (threshold, size filter, hole filling, TTA, ensemble or one fold)."""
