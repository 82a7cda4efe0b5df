"""Multiruns (`unet train -m ...`): each job's record, resuming and skipping jobs, the summary.

Hydra's launchers and sweepers run the jobs (docs/guides/sweeps.md); this package only
makes each job safe to run twice and collects what the jobs left behind.
"""
