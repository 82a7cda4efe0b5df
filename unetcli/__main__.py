"""`python -m unetcli` is the same as the `unet` command."""

from unetcli.cli import main

if __name__ == "__main__":
    main()
