"""Many processes, one run: torch.distributed set-up for `unet train|evaluate|predict`.

Two ways in, one behaviour. `hardware.devices=N` starts N processes on this
machine from inside the command (`launch.py`, torch.multiprocessing); a
process started by torchrun or srun+torchrun (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR in its environment), or by a plain srun (SLURM_* variables,
`slurm.py`), joins the job it belongs to (`env.py`, `group.py`). Either way
the processes share one run folder chosen by the main process, and the
command itself sees a `Processes` object (`unetcli.distributed.processes`) that
says who writes and joins their figures.
"""
