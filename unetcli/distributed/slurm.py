"""A task of a plain `srun -n N unet train ...` step: what torchrun would have told it.

srun starts every task itself and describes it in SLURM_* variables, not in
RANK/WORLD_SIZE/MASTER_ADDR. `torchrun_environment` translates one into the
other, so that a task started by srun joins its job exactly as one started by
torchrun does (and `srun torchrun ...` keeps working: torchrun's RANK wins).

Which shells are not srun tasks: the batch script of `sbatch --ntasks=4` and
the shell of `salloc -n 4` see SLURM_NTASKS=4 (and a batch script
SLURM_PROCID=0) but are one process; only a task of a job step has a step id
(SLURM_STEP_ID), so the step id is required and the step's own task count
(SLURM_STEP_NUM_TASKS) is the world size. An interactive `srun --pty` shell
(SLURM_PTY_PORT) is one process too. Lightning's SLURMEnvironment answers the
same question from SLURM_NTASKS and the job name ("bash"/"interactive");
the step id does not depend on what the job is called.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping

from unetcli.errors import UnetError

#: MASTER_PORT is PORT_BASE + (job id mod 1000) * 10 + (step id mod 10): the same in every
#: task of a step, different for 10 steps of one job running at once.
PORT_BASE = 20000


def torchrun_environment(env: Mapping[str, str]) -> dict[str, str] | None:
    """RANK, WORLD_SIZE, LOCAL_RANK, ... for a task of an srun step of several; else None."""
    if "RANK" in env or "SLURM_PROCID" not in env or "SLURM_PTY_PORT" in env:
        return None
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID"))
    if step is None:
        return None
    world = _number(env, "SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))
    if world <= 1:
        return None
    published = {
        "RANK": str(_number(env, "SLURM_PROCID")),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(_number(env, "SLURM_LOCALID", "0")),
        "LOCAL_WORLD_SIZE": str(_tasks_on_this_node(env, world)),
        "GROUP_RANK": str(_number(env, "SLURM_NODEID", "0")),
    }
    if "MASTER_ADDR" not in env:
        published["MASTER_ADDR"] = main_host(env)
    if "MASTER_PORT" not in env:
        job = _number(env, "SLURM_JOB_ID", env.get("SLURM_JOBID", "0"))
        published["MASTER_PORT"] = str(PORT_BASE + (job % 1000) * 10 + int(step) % 10)
    return published


def _number(env: Mapping[str, str], name: str, default: str | None = None) -> int:
    value = env.get(name, default)
    if value is None or not value.strip().isdigit():
        raise UnetError(
            f"this process looks like a task of an srun step (SLURM_PROCID and SLURM_STEP_ID "
            f"are set), but {name}={value!r} is not a number; run it under srun as usual, or "
            "set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT yourself (or use torchrun)"
        )
    return int(value)


def _tasks_on_this_node(env: Mapping[str, str], world: int) -> int:
    """This node's entry of SLURM_STEP_TASKS_PER_NODE (compact: `2(x3),1`), by SLURM_NODEID."""
    for name in ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"):
        if name in env:
            counts = tasks_per_node(env[name])
            node = _number(env, "SLURM_NODEID", "0")
            if node < len(counts):
                return counts[node]
    if "SLURM_NTASKS_PER_NODE" in env:
        return _number(env, "SLURM_NTASKS_PER_NODE")
    return world


def tasks_per_node(text: str) -> list[int]:
    """`2(x3),1` -> [2, 2, 2, 1]: Slurm's compact count of tasks on each node of a step."""
    counts: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not match:
            raise UnetError(f"cannot read the Slurm task counts per node {text!r}")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def main_host(env: Mapping[str, str]) -> str:
    """The host of task 0: the first of the step's (else the job's) node list."""
    for name in ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"):
        if env.get(name):
            nodes = env[name]
            break
    else:
        nodes = ""
    try:
        return expand_hostlist(nodes)[0]
    except (ValueError, IndexError):
        pass
    if nodes and shutil.which("scontrol"):
        shown = subprocess.run(
            ["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=False
        ).stdout.split()
        if shown:
            return shown[0]
    if env.get("SLURM_LAUNCH_NODE_IPADDR"):
        return env["SLURM_LAUNCH_NODE_IPADDR"]
    raise UnetError(
        f"cannot tell which host runs task 0 of this srun step from the node list {nodes!r}; "
        "set MASTER_ADDR to it (for example MASTER_ADDR=$(scontrol show hostnames "
        '"$SLURM_JOB_NODELIST" | head -n 1)) and run srun again'
    )


def expand_hostlist(text: str) -> list[str]:
    """Slurm's compact host list in full: `node[01-03,07],gpu3` -> node01 node02 node03 node07
    gpu3 (zero padding kept, several bracket groups in one name multiplied out)."""
    hosts: list[str] = []
    for item in _top_level_items(text):
        hosts += _expand(item)
    return hosts


def _top_level_items(text: str) -> list[str]:
    """Split at the commas outside brackets."""
    items, depth, current = [], 0, []
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            raise ValueError(f"unbalanced brackets in host list {text!r}")
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    if depth or not all(items):
        raise ValueError(f"cannot read host list {text!r}")
    return items


def _expand(item: str) -> list[str]:
    match = re.fullmatch(r"([^\[\]]*)\[([^\[\]]+)\](.*)", item)
    if not match:
        if "[" in item or "]" in item:
            raise ValueError(f"cannot read host name {item!r}")
        return [item]
    head, ranges, rest = match.groups()
    return [head + number + tail for number in _numbers(ranges) for tail in _expand(rest)]


def _numbers(ranges: str) -> list[str]:
    """`01-03,7` -> 01 02 03 7: each range keeps the width of its first number."""
    out = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit() or int(high or low) < int(low):
            raise ValueError(f"cannot read the range {part!r}")
        out += [str(i).zfill(len(low)) for i in range(int(low), int(high or low) + 1)]
    return out
