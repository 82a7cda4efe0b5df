"""What the environment says about this process: started by torchrun, srun+torchrun or srun?

torchrun and torch's elastic agent set RANK, WORLD_SIZE, LOCAL_RANK and
LOCAL_WORLD_SIZE for every process they start, and MASTER_ADDR/MASTER_PORT
for the rendezvous. A process that has them joins that job instead of
starting processes of its own. A task of a plain `srun -n N` step has only
SLURM_* variables: they are translated into torchrun's first
(`unetcli.distributed.slurm`), so from there on both take one path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime

from unetcli.distributed.slurm import torchrun_environment
from unetcli.errors import UnetError

#: Seconds since the epoch at which the job started, agreed by every process, so that
#: `${unet_now:...}` names the same run folder in all of them.
RUN_TIME = "UNETCLI_RUN_TIME"


@dataclass(frozen=True)
class Placement:
    """Where this process sits in its job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise UnetError(
                f"this process has RANK and WORLD_SIZE set but not {name}; start it with "
                "torchrun (or srun running torchrun), which sets all of them"
            )
        return default
    try:
        return int(value)
    except ValueError as err:
        raise UnetError(f"the environment variable {name}={value!r} is not a number") from err


def external_placement() -> Placement | None:
    """This process's place in a job started by torchrun or srun, or None when no launcher did.

    Under a plain srun it first publishes torchrun's variables (RANK, ..., MASTER_ADDR,
    MASTER_PORT) in this process's environment, for init_process_group and for child
    processes such as DataLoader workers.
    """
    os.environ.update(torchrun_environment(os.environ) or {})
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = _int("WORLD_SIZE")
    return Placement(
        rank=_int("RANK"),
        world_size=world,
        local_rank=_int("LOCAL_RANK", 0),
        local_world_size=_int("LOCAL_WORLD_SIZE", world),
    )


def set_placement_env(placement: Placement) -> None:
    """Publish a spawned process's place the way torchrun would, for code that reads it."""
    os.environ.update(
        RANK=str(placement.rank),
        WORLD_SIZE=str(placement.world_size),
        LOCAL_RANK=str(placement.local_rank),
        LOCAL_WORLD_SIZE=str(placement.local_world_size),
    )


def is_secondary_process() -> bool:
    """True in every process of a job but the main one (which alone writes shared files)."""
    return os.environ.get("RANK", "0") != "0"


def run_time(pattern: str) -> str:
    """The agreed start time of the job (or now, for a single process) formatted by `pattern`."""
    agreed = os.environ.get(RUN_TIME)
    moment = datetime.fromtimestamp(float(agreed)) if agreed else datetime.now()
    return moment.strftime(pattern)


def wall_clock() -> float:
    return time.time()
