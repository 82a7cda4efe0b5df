"""`unet doctor`: look at a dataset once, before training, and say how to read it.

The questions users ask every week (an all-black prediction from 0/255 masks,
colour masks, a suffix that did not match, which size to train at) are
answered by the data itself: this package pairs files, recognises the mask
encoding, measures images and objects, finds duplicates and suggests the
`dataset.*` options that read the folder correctly.
"""
