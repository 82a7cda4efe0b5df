"""Fetching datasets from Kaggle with the official client (see fetch.py for the order of steps)."""

from unetcli.download.fetch import KaggleSource, Outcome, download

__all__ = ["KaggleSource", "Outcome", "download"]
