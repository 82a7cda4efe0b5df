"""A task of a plain `srun -n N` step becomes what torchrun would have started.

Host lists and task counts in Slurm's compact forms, which shells are not
srun tasks, and the variables published. The real run of two `unet train`
tasks under a fake srun environment is in test_distributed_training.py.
"""

from __future__ import annotations

import os

import pytest

from unetcli.distributed import env as placement_env
from unetcli.distributed.slurm import (
    PORT_BASE,
    expand_hostlist,
    tasks_per_node,
    torchrun_environment,
)
from unetcli.errors import UnetError


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("gpu3", ["gpu3"]),
        ("node[01-04,07],gpu3", ["node01", "node02", "node03", "node04", "node07", "gpu3"]),
        ("a[8-11]", ["a8", "a9", "a10", "a11"]),
        ("rack[1-2]-n[09-10]", ["rack1-n09", "rack1-n10", "rack2-n09", "rack2-n10"]),
        ("cn[007],login-1.cluster", ["cn007", "login-1.cluster"]),
    ],
)
def test_compact_host_lists_expand_in_order(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text", ["node[01-", "node[3-1]", "n[a-b]", "n]1[", "a,,b", ""])
def test_unreadable_host_lists_are_refused(text):
    with pytest.raises(ValueError):
        expand_hostlist(text)


def test_task_counts_per_node_expand_their_repeats():
    assert tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert tasks_per_node("4") == [4]
    with pytest.raises(UnetError, match="task counts"):
        tasks_per_node("2(x)")


def srun_task(rank: int, **extra: str) -> dict[str, str]:
    """What srun sets for task `rank` of `srun -N 2 -n 3` (2 tasks on node01, 1 on node02)."""
    return {
        "SLURM_JOB_ID": "123456",
        "SLURM_STEP_ID": "2",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank % 2),
        "SLURM_NODEID": str(rank // 2),
        "SLURM_NTASKS": "3",
        "SLURM_STEP_NUM_TASKS": "3",
        "SLURM_STEP_TASKS_PER_NODE": "2,1",
        "SLURM_TASKS_PER_NODE": "2,1",
        "SLURM_JOB_NODELIST": "node[01-02]",
        "SLURM_STEP_NODELIST": "node[01-02]",
        "SLURM_LAUNCH_NODE_IPADDR": "10.0.0.9",
        **extra,
    }


def test_an_srun_task_gets_torchruns_variables():
    assert torchrun_environment(srun_task(2)) == {
        "RANK": "2",
        "WORLD_SIZE": "3",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",  # node02 runs one task
        "GROUP_RANK": "1",
        "MASTER_ADDR": "node01",  # the host of task 0, not the launching one
        "MASTER_PORT": str(PORT_BASE + 456 * 10 + 2),
    }
    first = torchrun_environment(srun_task(0))
    assert first["LOCAL_WORLD_SIZE"] == "2" and first["MASTER_PORT"] == str(PORT_BASE + 4562)


def test_what_the_user_or_torchrun_set_wins():
    assert torchrun_environment(srun_task(1, RANK="1", WORLD_SIZE="8")) is None  # srun torchrun
    chosen = torchrun_environment(srun_task(1, MASTER_ADDR="head", MASTER_PORT="29400"))
    assert "MASTER_ADDR" not in chosen and "MASTER_PORT" not in chosen


def test_shells_of_an_allocation_are_one_process():
    batch_script = srun_task(0)  # sbatch -n 3: the batch shell has no step and its own count
    for key in ("SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_TASKS_PER_NODE"):
        del batch_script[key]
    assert torchrun_environment(batch_script) is None
    salloc = {k: v for k, v in batch_script.items() if k != "SLURM_PROCID"}
    assert torchrun_environment(salloc) is None
    assert torchrun_environment(srun_task(0, SLURM_PTY_PORT="40125")) is None  # srun --pty bash
    one_task = srun_task(0, SLURM_STEP_NUM_TASKS="1")  # srun -n 1 inside an -n 3 allocation
    assert torchrun_environment(one_task) is None


def test_the_node_list_falls_back_to_the_launch_address_and_then_says_what_to_set(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no scontrol either
    task = srun_task(1, SLURM_STEP_NODELIST="node[01-", SLURM_JOB_NODELIST="node[01-")
    assert torchrun_environment(task)["MASTER_ADDR"] == "10.0.0.9"
    del task["SLURM_LAUNCH_NODE_IPADDR"]
    with pytest.raises(UnetError, match="set MASTER_ADDR"):
        torchrun_environment(task)
    with pytest.raises(UnetError, match="SLURM_PROCID='x' is not a number"):
        torchrun_environment(srun_task(0, SLURM_PROCID="x"))


def test_external_placement_publishes_them_for_the_rest_of_the_run(monkeypatch):
    published = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    for key in (*published, "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "")  # so that monkeypatch removes what the code sets
        monkeypatch.delenv(key)
    for key, value in srun_task(1).items():
        monkeypatch.setenv(key, value)
    placement = placement_env.external_placement()
    assert placement == placement_env.Placement(rank=1, world_size=3, local_rank=1,
                                                local_world_size=2)  # fmt: skip
    assert os.environ["MASTER_ADDR"] == "node01" and os.environ["RANK"] == "1"
