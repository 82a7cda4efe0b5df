"""From probabilities to what a user keeps: labels (threshold or argmax, size filter, hole
filling) and pictures of them. NumPy and OpenCV only, shared with the torch-free runner."""
