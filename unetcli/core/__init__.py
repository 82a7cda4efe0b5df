"""What every layer shares: the task, checkpoint and image files, geometry, hardware, console.

Nothing here imports another unetcli package except `unetcli.errors`: models, datasets,
training, inference and the commands all build on these pieces.
"""
