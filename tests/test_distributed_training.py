"""Training in several processes (gloo, 2 CPU processes): both ways in, exactness, resume.

One real torchrun launch and one `hardware.devices=2` run (in-process, which
spawns its two processes) are shared by the tests below; the single-process
runs they are compared with run in-process. A model without batch statistics
(model.norm=group), loss=bce (a mean over pixels) and no schedule make
2 processes x batch 2 the same computation as 1 process x batch 4.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.helpers import REPO, compose, only_run_dir, run_command, unet_command
from unetcli.distributed.launch import launch, thread_share
from unetcli.distributed.slurm import PORT_BASE

pytestmark = pytest.mark.slow


def overrides(
    root: Path, batch: int, *extra: str, norm: str = "group", loss: str = "bce"
) -> list[str]:
    return [
        f"paths.data_dir={root / 'data'}",
        f"paths.output_root={root / 'outputs'}",
        "dataset.layout.num_objects=8",
        "dataset.layout.views=2",
        "dataset.layout.num_test=4",
        "dataset.layout.height=32",
        "dataset.layout.width=48",
        "dataset.image_size=[32,48]",
        "model.widths=[4,8,16]",
        f"model.norm={norm}",
        f"loss={loss}",
        "scheduler=none",
        "optimizer.lr=3e-3",
        "trainer.log_images=2",
        f"trainer.batch_size={batch}",
        "trainer.progress=false",
        "hardware=cpu",
        "hardware.precision=fp32",
        "hardware.tune=false",  # one setting in every run compared (no cached choice)
        "hardware.num_workers=0",
        *extra,
    ]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real torchrun, 2 processes on this machine, running `python -m unetcli ARGS`."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*command, "-m", "unetcli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )


LAUNCHERS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def free_job_id() -> int:
    """A Slurm job id whose derived MASTER_PORT (step 0) is free on this machine."""
    for job in random.sample(range(1000), 1000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", PORT_BASE + job * 10))
                return job
            except OSError:
                continue
    raise AssertionError("no free port in the range srun tasks derive theirs from")


def srun(*args: str, cwd: Path) -> list[tuple[int, str, str]]:
    """`srun -n 2 unet ARGS` on one node: two `unet` processes with what srun sets for each
    task (no RANK, MASTER_ADDR or MASTER_PORT); (exit status, stdout, stderr) of each."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k not in LAUNCHERS
    }
    job = str(free_job_id())
    tasks = []
    for rank in range(2):
        slurm = {
            "SLURM_JOB_ID": job, "SLURM_STEP_ID": "0", "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0", "SLURM_NTASKS": "2",
            "SLURM_STEP_NUM_TASKS": "2", "SLURM_TASKS_PER_NODE": "2",
            "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_JOB_NODELIST": "localhost",
            "SLURM_STEP_NODELIST": "localhost", "SLURM_LAUNCH_NODE_IPADDR": "127.0.0.1",
        }  # fmt: skip
        out, err = (open(cwd / f"task{rank}.{kind}", "w+") for kind in ("out", "err"))  # noqa: SIM115
        env = {**base, "NO_ALBUMENTATIONS_UPDATE": "1", **slurm}
        command = [*unet_command(), *args]
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True, env=env)
        tasks.append((process, out, err))
    finished = []
    for process, out, err in tasks:
        process.wait(timeout=300)
        finished.append((process.returncode, *(f.seek(0) or f.read() for f in (out, err))))
        out.close(), err.close()
    return finished


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)


def assert_same_weights(a: Path, b: Path, atol: float = 2e-5) -> None:
    wa, wb = state(a)["model"], state(b)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=atol, msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """one: 1 process x batch 4, epoch 1; two: torchrun 2 x batch 2, epoch 1 (+ its output);
    then epoch 2 of each, resumed with the other number of processes."""
    root = tmp_path_factory.mktemp("dist")
    one = root / "one"
    run_command("train", overrides(root, 4, "trainer.epochs=1"), one)
    proc = torchrun("train", *overrides(root, 2, "trainer.epochs=1"), cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    two = only_run_dir(root / "outputs" / "train")
    two_to_one = root / "two_to_one"
    resume = f"trainer.resume={two / 'checkpoints' / 'last.pt'}"
    run_command("train", overrides(root, 4, "trainer.epochs=2", resume), two_to_one)
    one_to_two = root / "one_to_two"
    resume = f"trainer.resume={one / 'checkpoints' / 'last.pt'}"
    result = run_command(
        "train", overrides(root, 2, "trainer.epochs=2", "hardware.devices=2", resume), one_to_two
    )
    return {
        "root": root,
        "one": one,
        "two": two,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "two_to_one": two_to_one,
        "one_to_two": one_to_two,
        "one_to_two_result": result,
    }


def test_two_processes_of_batch_b_train_the_weights_of_one_process_of_batch_2b(runs):
    assert_same_weights(runs["one"], runs["two"])
    assert "batch 2 per process x 2 processes = 4 per step (gloo" in runs["stdout"]


def test_with_batch_norm_and_batch_dice_two_processes_train_the_weights_of_one_too(tmp_path):
    """The defaults model.norm=batch and loss=bce_dice: batch statistics and the soft Dice
    are taken over the global batch, as one process takes them."""
    one, two = tmp_path / "one", tmp_path / "two"
    defaults = {"norm": "batch", "loss": "bce_dice"}
    run_command("train", overrides(tmp_path, 4, "trainer.epochs=1", **defaults), one)
    two_processes = overrides(tmp_path, 2, "trainer.epochs=1", "hardware.devices=2", **defaults)
    run_command("train", two_processes, two)
    # Running means and variances included. The batch norm all-reduce sums in another
    # order than one process: on an AVX-512 CPU (Zen 4) Adam turned that into weights
    # up to 7e-5 apart after this epoch; per-process statistics (sync_batchnorm=false)
    # leave them 5e-2 apart, so 2e-4 still tells the two apart.
    assert_same_weights(one, two, atol=2e-4)
    assert "running_var" in " ".join(state(two)["model"])


def test_a_torchrun_launch_writes_one_run_folder_from_the_main_process_only(runs):
    out = runs["stdout"]
    # One set of start lines, epoch lines and summary: the other process prints nothing.
    assert out.count("run folder:") == 1 and out.count("unet train: done") == 1
    assert out.count("epoch 1/1") == 1
    run = runs["two"]
    assert {p.name for p in run.iterdir()} >= {".hydra", "checkpoints", "metrics.csv"}
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert len(list((run / "tensorboard").iterdir())) == 1  # one events file
    assert json.loads((run / "result.json").read_text())["epochs"] == 1
    assert "Traceback" not in runs["stderr"]


def test_a_plain_srun_step_of_two_tasks_is_one_job(runs):
    """srun without torchrun: the tasks find each other from SLURM_* alone, write one run
    folder from task 0 only and train what torchrun's two processes (and one process) do."""
    root = runs["root"] / "srun"
    root.mkdir()
    args = [a for a in overrides(runs["root"], 2, "trainer.epochs=1") if "output_root" not in a]
    (code0, out0, err0), (code1, out1, err1) = srun("train", *args, "paths.output_root=outputs",
                                                      cwd=root)  # fmt: skip
    assert code0 == 0 and code1 == 0, err0 + err1
    assert out1 == "" and out0.count("run folder:") == 1 and out0.count("unet train: done") == 1
    assert "batch 2 per process x 2 processes = 4 per step (gloo" in out0
    run = only_run_dir(root / "outputs" / "train")
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert len(list((run / "tensorboard").iterdir())) == 1 and (run / ".hydra").is_dir()
    assert "Traceback" not in err0 + err1
    assert_same_weights(runs["two"], run)
    assert_same_weights(runs["one"], run)


def test_resuming_with_another_number_of_processes_continues_the_run(runs):
    # 2 -> 1 and 1 -> 2 both continue at epoch 2 with the optimizer's state...
    for name in ("two_to_one", "one_to_two"):
        saved = state(runs[name])
        assert saved["epoch"] == 2
        rows = (runs[name] / "metrics.csv").read_text().splitlines()
        assert [r.split(",")[0] for r in rows[1:]] == ["2"]
    steps = state(runs["one"])["global_step"]
    assert state(runs["one_to_two"])["global_step"] == 2 * steps
    adam = state(runs["one_to_two"])["optimizer"]["state"][0]["step"]
    assert int(adam) == 2 * steps
    # ...and reach the same weights: both are two epochs at a global batch of 4.
    assert_same_weights(runs["two_to_one"], runs["one_to_two"])


def test_gathered_validation_equals_single_process_evaluate_of_the_checkpoint(runs):
    final = runs["one_to_two_result"]["final"]
    evaluated = run_command(
        "evaluate",
        [
            f"checkpoint={runs['one_to_two'] / 'checkpoints' / 'last.pt'}",
            f"paths.output_root={runs['root'] / 'outputs'}",
            "hardware=cpu",
            "hardware.precision=fp32",
            "hardware.tune=false",
            "evaluate.progress=false",
            "evaluate.sweep=false",
        ],
        runs["root"] / "evaluated",
    )
    for name in ("dice", "iou", "accuracy"):
        assert f"{final[f'val/{name}']:.4f}" == f"{evaluated['metrics'][name]:.4f}", name


def inference_args(runs: dict, *extra: str) -> list[str]:
    return [
        f"checkpoint={runs['one_to_two'] / 'checkpoints' / 'last.pt'}",
        f"paths.output_root={runs['root'] / 'outputs'}",
        "hardware=cpu",
        "hardware.precision=fp32",
        "hardware.tune=false",  # one setting in every run compared (no cached choice)
        "hardware.num_workers=0",
        *extra,
    ]


def test_a_distributed_submission_decompresses_to_the_single_process_one(runs):
    root = runs["root"]
    args = inference_args(runs, "predict.progress=false", "predict.batch_size=1")
    one = run_command("predict", args, root / "predict_one")
    two = run_command("predict", [*args, "hardware.devices=2"], root / "predict_two")
    assert gzip.decompress(one.read_bytes()) == gzip.decompress(two.read_bytes())
    assert len(gzip.decompress(two.read_bytes()).splitlines()) == 1 + 4  # header + test images
    # The parts were joined and removed; what is left is the submission and the tuner's report.
    assert sorted(p.name for p in two.parent.iterdir()) == ["hardware.json", "submission.csv.gz"]


def test_a_distributed_ensemble_submission_decompresses_to_the_single_process_one(runs):
    """Each process averages every member on its own block of images (issue: folds)."""
    root = runs["root"]
    members = [runs[name] / "checkpoints" / "last.pt" for name in ("one_to_two", "two_to_one")]
    single = inference_args(runs, "predict.progress=false")
    args = [
        *(a for a in single if not a.startswith("checkpoint=")),
        f"ensemble=[{','.join(str(m) for m in members)}]",
    ]
    one = run_command("predict", args, root / "ensemble_one")
    two = run_command("predict", [*args, "hardware.devices=2"], root / "ensemble_two")
    assert gzip.decompress(one.read_bytes()) == gzip.decompress(two.read_bytes())
    assert len(gzip.decompress(two.read_bytes()).splitlines()) == 1 + 4


def test_distributed_evaluate_reports_what_one_process_reports(runs):
    root = runs["root"]
    args = inference_args(runs, "evaluate.progress=false", "evaluate.split=train")
    one = run_command("evaluate", args, root / "evaluate_one")
    two = run_command("evaluate", [*args, "hardware.devices=2"], root / "evaluate_two")
    assert two["metrics"] == one["metrics"] and two["images"] == one["images"]
    csv_one = (root / "evaluate_one" / "per_image.csv").read_text()
    assert (root / "evaluate_two" / "per_image.csv").read_text() == csv_one


def report_threads(cfg, processes) -> int:
    """A job's work: each process leaves the torch threads it computes with."""
    box = Path(os.environ["UNET_TEST_BOX"])
    (box / f"rank{processes.rank}").write_text(str(torch.get_num_threads()))
    return torch.get_num_threads()


def test_processes_started_here_share_the_threads_of_the_process_that_starts_them(
    tmp_path, monkeypatch
):
    """Each of n spawned processes would start one thread per core: n times the machine."""
    monkeypatch.setenv("UNET_TEST_BOX", str(tmp_path))
    cfg = compose("train", ["hardware=cpu", "hardware.devices=2", f"paths.run_dir={tmp_path}"])
    before = torch.get_num_threads()
    torch.set_num_threads(5)
    try:
        assert launch(cfg, report_threads) == 2
        torch.set_num_threads(1)
        assert thread_share(4) == 1  # more processes than threads: one each, never none
    finally:
        torch.set_num_threads(before)
    assert [(tmp_path / f"rank{r}").read_text() for r in range(2)] == ["2", "2"]


def run_cli_as_rank(rank: int, port: int, root: str, args: list[str]) -> None:
    """One process of a 2-process job as torchrun starts it: `unet ARGS`, then report
    whether it is still in the job's process groups."""
    import torch.distributed as dist

    from unetcli.cli import main

    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NO_ALBUMENTATIONS_UPDATE="1",
    )  # fmt: skip
    main(args)
    (Path(root) / f"rank{rank}").write_text(str(dist.is_initialized()))


def test_a_finished_command_leaves_the_jobs_process_groups(runs):
    """Groups left to the interpreter's shutdown can abort a process that did all its work
    (gloo's threads: "terminate called without an active exception"), a failed torchrun job."""
    root = runs["root"] / "left"
    root.mkdir()
    args = [a for a in overrides(runs["root"], 2, "trainer.epochs=1") if "output_root" not in a]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["train", *args, f"paths.output_root={root / 'outputs'}"]
    mp.start_processes(run_cli_as_rank, args=(port, str(root), command), nprocs=2,
                       start_method="spawn")  # fmt: skip
    assert [(root / f"rank{r}").read_text() for r in range(2)] == ["False", "False"]
    assert len(list((root / "outputs" / "train").iterdir())) == 1
