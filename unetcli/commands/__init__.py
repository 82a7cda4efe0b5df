"""One module per `unet` command, each a Hydra app with its own primary config."""
