"""Datasets: where each one's files live (layouts) and how they become tensors."""

from unetcli.datasets.base import Layout, Sample, grouped_split

__all__ = ["Layout", "Sample", "grouped_split"]
