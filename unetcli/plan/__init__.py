"""`unet plan`: choose size, model width, batch and epochs by measuring this machine.

Fixed rules for a reference GPU (nnU-Net's way) guess wrong on a laptop CPU;
here a few real training steps at each candidate say how many images per
second each choice trains, and the time budget turns that into epochs.
"""
