"""Joining a job torchrun started, before Hydra makes the run folder.

Hydra names a run folder after the clock (`${unet_now:...}` in conf/base.yaml).
Processes that torchrun starts would each read their own clock and make
their own folder; here they first join the job's gloo group and take the main
process's clock, so they all name the same folder. Only the main process
writes Hydra's `.hydra/` and log file in it.
"""

from __future__ import annotations

import signal
import sys

from unetcli.distributed.env import external_placement

#: Hydra overrides for every process but the main one: it writes no .hydra/ and no log file.
SECONDARY_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=none"]


def join_external_job() -> list[str]:
    """Join the job this process belongs to (if torchrun started it); extra Hydra overrides."""
    placement = external_placement()
    if placement is None or placement.world_size == 1:
        return []
    from unetcli.distributed.group import agree_on_run_time, join_control_group, quiet_unless_main

    join_control_group(placement)
    agree_on_run_time()
    quiet_unless_main(placement)
    if placement.is_main:
        return []
    # Ctrl-C reaches every process of the terminal: the main one reports it, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return list(SECONDARY_OVERRIDES)


def leave_external_job() -> None:
    """Leave the job's process groups once the command has finished its work.

    Left to the interpreter's shutdown, gloo's worker threads are destroyed while
    still joinable and a process that did all its work can abort ("terminate
    called without an active exception", SIGABRT), which torchrun reports as a
    failed job. Only after success: a failed process must not wait on the others.
    """
    if "torch.distributed" not in sys.modules:
        return
    from unetcli.distributed.group import leave

    leave()


def end_external_process() -> None:
    """End a process of a torchrun or srun job at once, its command done and its groups left
    (why: `unetcli.distributed.group.exit_at_once`)."""
    placement = external_placement()
    if placement is None or placement.world_size == 1:
        return
    from unetcli.distributed.group import exit_at_once

    exit_at_once()
