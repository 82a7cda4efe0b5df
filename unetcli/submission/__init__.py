"""Kaggle-style submissions: the RLE code, the streamed resumable writer, the checked reader.

NumPy only (no torch): `unet predict`, `unet score` and the torch-free runner share it.
"""
