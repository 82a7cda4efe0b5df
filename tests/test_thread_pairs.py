"""The loader-worker rule and the (torch threads, loader workers) pairs the tuner tries.

The rule is what a run gets when nothing is measured (hardware.tune=false, or a thread
trial that does not fit its budget), so it must be right on its own: on a 2-core CPU a
worker takes half of the cores the model computes on.
"""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from unetcli.core.cpus import usable_cores
from unetcli.core.hardware import resolve_hardware, rule_workers
from unetcli.inference.options import resolve_threads
from unetcli.tuning.cache import device_name
from unetcli.tuning.threads import thread_pairs

AUTO = OmegaConf.create({"threads": "auto", "num_workers": "auto"})
CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("cores", "cuda", "workers"),
    [(1, False, 0), (2, False, 0), (2, True, 1), (4, False, 3), (16, False, 4), (16, True, 15)],
)
def test_the_rule_gives_workers_a_core_of_their_own(cores, cuda, workers):
    assert rule_workers(cores, cuda) == workers


def test_a_two_core_cpu_tries_the_rule_first_then_one_worker():
    assert thread_pairs(AUTO, 2) == [(2, 0), (2, 1), (1, 1)]


def test_more_cores_try_the_rule_first_then_no_workers():
    assert thread_pairs(AUTO, 8) == [(8, 4), (4, 4), (8, 0)]
    assert thread_pairs(AUTO, 2, on_cuda=True) == [(2, 1), (1, 1), (2, 0)]


def test_one_core_and_forced_keys_leave_one_pair():
    assert thread_pairs(AUTO, 1) == [(1, 0)]
    forced = OmegaConf.create({"threads": 3, "num_workers": 2})
    assert thread_pairs(forced, 8) == [(3, 2)]


def cores(monkeypatch, allowed: int, machine: int = 64) -> None:
    """A process allowed `allowed` cores of a `machine`-core machine (taskset, Slurm)."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(allowed)))
    monkeypatch.setattr("os.cpu_count", lambda: machine)


def test_resolve_hardware_follows_the_rule_on_the_cores_the_process_may_use(monkeypatch):
    cores(monkeypatch, 2)  # not the machine's 64: a worker would take a core from the model
    assert resolve_hardware({"device": "cpu"}).num_workers == 0
    cores(monkeypatch, 6)
    assert resolve_hardware({"device": "cpu"}).num_workers == 4


def test_every_rule_counts_the_same_cores(monkeypatch):
    cores(monkeypatch, 3)
    assert usable_cores() == 3
    assert resolve_threads("auto", "predict.threads") == 3
    assert device_name(CPU).endswith(", 3 cores")


def test_without_an_affinity_call_the_machines_count_is_used(monkeypatch):
    """macOS has no os.sched_getaffinity: the rules still work there."""
    monkeypatch.delattr("os.sched_getaffinity")
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert usable_cores() == 6
    assert resolve_hardware({"device": "cpu"}).num_workers == 4
    assert device_name(CPU).endswith(", 6 cores")
