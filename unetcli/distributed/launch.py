"""Run a command's work in one process, in the processes torchrun started, or in N of its own.

`launch(cfg, work)` is the only entry: `work(cfg, processes)` is the
command's body. With `hardware.devices=N` (N > 1) it starts N processes with
torch.multiprocessing; they meet through a TCPStore this process holds, get
the resolved config (so they share its run folder) and their share of this
process's torch threads, and run `work`. This
process waits: when one of them fails (an error, or killed) it stops the
others within seconds and reports that process's error in one paragraph;
Ctrl-C stops them all.
"""

from __future__ import annotations

import json
import logging
import pickle
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import DictConfig, OmegaConf
from torch.multiprocessing.spawn import ProcessContext, ProcessException

from unetcli.core.hardware import resolve_hardware
from unetcli.distributed.devices import local_device
from unetcli.distributed.env import Placement, external_placement, set_placement_env
from unetcli.distributed.group import (
    choose_backend,
    cuda_devices,
    exit_at_once,
    gradient_group,
    join_control_group,
    leave,
    quiet_unless_main,
    use_sync_batchnorm,
)
from unetcli.distributed.processes import DistributedProcesses, Processes, SingleProcess
from unetcli.errors import UnetError

T = TypeVar("T")
Work = Callable[[DictConfig, Processes], T]
#: Seconds the other processes get to stop by themselves once one has failed.
GRACE = 5.0


def launch(cfg: DictConfig, work: Work, hint: Callable[[DictConfig], str] | None = None) -> Any:
    """Run `work(cfg, processes)` in as many processes as the launcher or hardware.devices says.

    `hint(cfg)` adds what to do next to the message of a failed or interrupted
    job (for training: the last good checkpoint).
    """
    devices = int(cfg.hardware.devices)
    placement = external_placement()
    if placement is not None and placement.world_size > 1:
        if devices != 1:
            raise UnetError(
                f"this process was started by torchrun or srun as one of {placement.world_size}; "
                f"leave hardware.devices at 1 (got {devices}): the launcher already chose the "
                "processes"
            )
        join_control_group(placement)
        return work(cfg, processes_for(placement, cfg))
    if devices < 1:
        raise UnetError(f"hardware.devices must be 1 or more, got {devices}")
    if devices == 1:
        return work(cfg, SingleProcess())
    return spawn(cfg, work, devices, hint)


def processes_for(placement: Placement, cfg: DictConfig) -> DistributedProcesses:
    """This process's view of the job: backend, its CUDA device, SyncBatchNorm or not."""
    device = resolve_hardware(cfg.hardware).device
    backend = choose_backend(str(cfg.hardware.backend), device.type)
    sync = use_sync_batchnorm(cfg.hardware.sync_batchnorm)
    if device.type == "cuda":
        # srun may show each task only its own GPU (--gpus-per-task): then it is device 0.
        torch.cuda.set_device(local_device(placement, cuda_devices()))
    return DistributedProcesses(placement, backend, gradient_group(backend), sync)


def spawn(cfg: DictConfig, work: Work, n: int, hint: Callable[[DictConfig], str] | None) -> Any:
    """Start n processes of `work` on this machine and wait for them; rank 0's result."""
    device = resolve_hardware(cfg.hardware).device
    if device.type == "cuda" and n > cuda_devices():
        raise UnetError(
            f"hardware.devices={n} but this machine has {cuda_devices()} CUDA devices; "
            "ask for at most that many (or hardware=cpu for CPU processes)"
        )
    resolved = OmegaConf.to_container(cfg, resolve=True)
    threads = thread_share(n)
    _quiet_clean_up()
    store = dist.TCPStore("127.0.0.1", 0, n + 1, is_master=True, wait_for_workers=False)
    with tempfile.TemporaryDirectory(prefix="unet-processes-") as box:
        context = mp.start_processes(
            _process,
            args=(Meeting(n, store.port, box, threads), resolved, work),
            nprocs=n,
            join=False,
            start_method="spawn",
        )
        try:
            while not context.join(grace_period=GRACE):
                pass
        except KeyboardInterrupt:
            _stop(context)
            raise UnetError(
                f"interrupted; all {n} processes were stopped. {hint(cfg) if hint else ''}"
            ) from None
        except ProcessException as err:
            raise UnetError(_failure(err, context, Path(box), cfg, hint)) from None
        with open(Path(box) / "result.pkl", "rb") as f:
            return pickle.load(f)


def _quiet_clean_up() -> None:
    """The failure paragraph is the message: torch's own notes on stopping processes, and
    the resource tracker's on semaphores a killed process left behind, would bury it."""
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    ignore = "ignore::UserWarning:multiprocessing.resource_tracker"
    if ignore not in sys.warnoptions:
        sys.warnoptions.append(ignore)  # read when the tracker process is started


def _stop(context: ProcessContext) -> None:
    """Terminate every process of the job, then kill those that do not go within GRACE s."""
    for process in context.processes:
        if process.is_alive():
            process.terminate()
    for process in context.processes:
        process.join(GRACE)
        if process.is_alive():
            process.kill()
            process.join()


def thread_share(n: int) -> int:
    """Torch threads for each of n processes started here: this process's threads, divided.

    A spawned process would otherwise start one thread per core, so n of them
    ask for n times the machine (torchrun sets OMP_NUM_THREADS=1 for the same
    reason, leaving cores idle). Dividing this process's count keeps
    OMP_NUM_THREADS, the CPU affinity and a parallel sweep's share
    (`sweeps/cores.py`) in force.
    """
    return max(1, torch.get_num_threads() // n)


@dataclass(frozen=True)
class Meeting:
    """What each spawned process is handed: how many they are, where they meet (the
    launching process's TCPStore), where they leave results or errors, their threads."""

    n: int
    port: int
    box: str
    threads: int


def _process(index: int, meeting: Meeting, resolved: dict, work: Work) -> None:
    """One spawned process: join the job, run the work, leave rank 0's result or its error."""
    n, port, box = meeting.n, meeting.port, meeting.box
    torch.set_num_threads(meeting.threads)
    placement = Placement(index, n, index, n)
    set_placement_env(placement)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launching process handles Ctrl-C
    quiet_unless_main(placement)
    try:
        store = dist.TCPStore("127.0.0.1", port, n + 1, is_master=False)
        join_control_group(placement, store)
        cfg = OmegaConf.create(resolved)
        OmegaConf.set_struct(cfg, True)
        result = work(cfg, processes_for(placement, cfg))
        if placement.is_main:
            tmp = Path(box) / "result.pkl.tmp"
            tmp.write_bytes(pickle.dumps(result))
            tmp.replace(Path(box) / "result.pkl")
        leave()
    except BaseException as err:  # reported by the launching process, in one paragraph
        (Path(box) / f"rank{index}.json").write_text(json.dumps(_describe(err)))
        sys.exit(1)
    exit_at_once()


def _describe(err: BaseException) -> dict:
    """What went wrong in one process: a UnetError as it is, anything else with its place."""
    if isinstance(err, UnetError):
        return {"peer": False, "message": str(err)}
    text = f"{type(err).__name__}: {err}"
    peer = isinstance(err, dist.DistError) or "gloo" in text.lower() or "nccl" in text.lower()
    frames = traceback.extract_tb(err.__traceback__)
    if frames:
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return {"peer": peer, "message": text}


def _failure(
    err: ProcessException,
    context: ProcessContext,
    box: Path,
    cfg: DictConfig,
    hint: Callable | None,
) -> str:
    """One paragraph: which process failed first and why (a lost peer is only a consequence)."""
    n = len(context.processes)
    reports = {}
    for rank in range(n):
        path = box / f"rank{rank}.json"
        if path.is_file():
            reports[rank] = json.loads(path.read_text())
    first = err.error_index
    own = [r for r in [first, *sorted(reports)] if r in reports and not reports[r]["peer"]]
    codes = [p.exitcode for p in context.processes]
    # Killed from outside: no report, and not one of those the clean-up itself terminated.
    killed = [r for r in range(n) if r not in reports and codes[r] not in (0, -signal.SIGTERM)]
    if own:
        rank, why = own[0], reports[own[0]]["message"]
    elif killed or first not in reports:
        rank = killed[0] if killed else first
        why = _exit_text(codes[rank])
    else:
        rank, why = first, reports[first]["message"]
    after = f" {hint(cfg)}" if hint else ""
    return f"process {rank} of {n} failed, so all {n} were stopped: {why}.{after}"


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"it was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"it was killed by signal {-code}"
    return f"it exited with status {code} without a message"
