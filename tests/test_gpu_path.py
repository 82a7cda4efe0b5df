"""The CUDA path, checked on the CPU: what a GPU does asynchronously is stood in for.

A fake device queues work that completes late (as a GPU's backward pass does) and a
sync hook that waits for it; flags are read back inside the timed step; the core count
and CUDA are pretended; host reads (the points where a GPU step would wait) are counted;
a fake grad scaler overflows. No test here needs a GPU.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import compose, run_command, tiny_overrides, tuning_config
from unetcli.core import hardware
from unetcli.core.hardware import Runtime, resolve_hardware, rule_workers
from unetcli.core.task import Task
from unetcli.errors import UnetError
from unetcli.losses import BCELoss
from unetcli.training.nonfinite import NonFiniteSteps
from unetcli.training.schedulers import Schedule
from unetcli.training.step import StepResult, TrainingStep
from unetcli.training.trainer import Trainer
from unetcli.tuning.candidates import Candidate
from unetcli.tuning.paired_timing import measure, no_sync
from unetcli.tuning.threads import thread_pairs
from unetcli.tuning.timed import under_flags

CUDA = torch.device("cuda")  # a device object only: nothing here runs on it


class LateDevice:
    """Work queued by a step finishes later: at `sync()`, or when the next step queues."""

    def __init__(self) -> None:
        self.pending = 0.0

    def step(self, own_seconds: float):
        def run() -> float:
            time.sleep(self.pending)  # the previous step's work still occupies the device
            self.pending = own_seconds  # returns at once, like a GPU step before its backward
            return 1.0

        return run

    def sync(self) -> None:
        time.sleep(self.pending)
        self.pending = 0.0


def test_the_measure_waits_for_the_device_so_late_work_is_timed_as_its_own():
    device = LateDevice()
    steps = {"slow": device.step(0.04), "fast": device.step(0.004)}
    out = measure(steps, 8, lambda _: float("inf"), rounds=6, sync=device.sync)
    assert out.rates["fast"] > 4 * out.rates["slow"], out.rates
    # The stand-in shows the defect it guards against: without the wait, the slow
    # candidate's work lands in the fast one's time.
    device = LateDevice()
    steps = {"slow": device.step(0.04), "fast": device.step(0.004)}
    blind = measure(steps, 8, lambda _: float("inf"), rounds=6, sync=no_sync)
    assert blind.rates["fast"] < 2 * blind.rates["slow"], blind.rates


def test_each_candidate_computes_under_its_own_flags_while_it_is_timed():
    base = Runtime(CUDA, None, False, 0, False)
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    seen: dict[str, set] = {"fp32": set(), "tf32": set()}

    def reader(name: str):
        def step() -> float:
            matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            seen[name].add((matmul, cudnn, torch.backends.cudnn.benchmark))
            return 1.0

        return step

    steps = {
        c.name: under_flags(c.runtime(base), reader(c.name))
        for c in (Candidate("fp32", False), Candidate("tf32", False))
    }
    measure(steps, 8, lambda _: float("inf"), rounds=4)
    assert seen == {"fp32": {(False, False, True)}, "tf32": {(True, True, True)}}
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_compile_warm_ups_keep_within_the_budget():
    started = time.perf_counter()
    budget = 0.3

    def limit(_step: float) -> float:
        return budget - (time.perf_counter() - started)

    steps = {"eager": lambda: time.sleep(0.01) or 1.0, "compiled": lambda: time.sleep(0.2) or 1.0}
    out = measure(steps, 8, limit, rounds=5, warmup={"eager": 1, "compiled": 3})
    assert "budget used" in out.dropped["compiled"]
    assert out.seconds < budget + 0.2 + 0.1  # at most one warm-up call past the budget


def test_not_measured_is_cached_so_the_next_run_does_not_pay_again(tmp_path, monkeypatch):
    from unetcli.tuning import training

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    overrides = [
        *tiny_overrides(tmp_path, objects=4),
        "hardware=cpu",
        "hardware.tune=true",
        "hardware.precision=fp32",
        "hardware.tune_budget.seconds=0.001",
        f"paths.run_dir={tmp_path / 'run'}",
    ]
    first = training.training_runtime(compose("train", overrides))
    assert "not measured" in first.reason
    calls = []
    monkeypatch.setattr(training, "fresh_step", lambda *a, **k: calls.append(a))
    second = training.training_runtime(compose("train", overrides))
    assert calls == [] and second.reason.startswith("cache: not measured")


def test_a_16_core_cuda_machine_loads_on_15_workers(monkeypatch):
    asked = []

    def bf16(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return not including_emulation  # a V100: only emulated

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16)
    monkeypatch.setattr(hardware, "usable_cores", lambda: 16)
    runtime = resolve_hardware({"device": "auto"})
    assert runtime.device.type == "cuda" and runtime.num_workers == 15
    assert asked == [False] and runtime.precision == "bf16"  # native bf16 is asked for
    assert rule_workers(16, on_cuda=True) == 15 and rule_workers(16, on_cuda=False) == 4
    auto = {"threads": "auto", "num_workers": "auto"}
    workers = {w for _, w in thread_pairs(SimpleNamespace(**auto), 16, on_cuda=True)}
    assert workers == {15, 7, 0}


def host_reads(monkeypatch) -> list[str]:
    """Every read of a tensor's value onto the host by unetcli's own code (a GPU waits at each).

    Masks checked by `check_mask_values` are not counted: a GPU step gives it the batch's
    host copy, before uploading it.
    """
    reads: list[str] = []
    package = str(Path(hardware.__file__).parents[1])
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(package) and caller.co_name != "check_mask_values":
                reads.append(f"{_name} in {caller.co_name}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads


def tiny_step(**kwargs) -> TrainingStep:
    torch.manual_seed(0)
    model = compose("train", ["model.widths=[4,8]"]).model
    from unetcli.models.contract import build_model

    net = build_model(model)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    runtime = Runtime(torch.device("cpu"), None, False, 0, False)
    return TrainingStep(net, optimizer, BCELoss(Task("binary", 1)), runtime, **kwargs)


def batch() -> dict:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 32, 32, generator=generator)
    return {"image": image, "mask": (image[:, 0] > 0).long()}


@pytest.mark.parametrize("clip", [None, 1.0])
def test_a_step_reads_the_host_once(monkeypatch, clip):
    step = tiny_step(grad_clip_norm=clip)
    step(batch())  # first-call set-up
    reads = host_reads(monkeypatch)
    result = step(batch())
    assert result.bad is None and reads == ["tolist in host_values"], reads


class OverflowingScaler:
    """fp16's scaler with an overflow on chosen calls: the scaled gradients are infinite."""

    def __init__(self, overflow_on: set[int]) -> None:
        self.overflow_on, self.calls, self.log = overflow_on, 0, []
        self.inner = torch.amp.GradScaler("cpu", enabled=False)

    def is_enabled(self) -> bool:
        return True

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return loss * 1e39 if self.calls in self.overflow_on else loss  # fp32 overflow: inf

    def unscale_(self, optimizer) -> None:
        self.log.append("unscale_")

    def step(self, optimizer) -> None:
        self.log.append("step")
        optimizer.step()

    def update(self) -> None:
        self.log.append("update")

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


def test_a_step_the_scaler_skips_is_a_skip_not_a_trained_step():
    step = tiny_step()
    step.scaler = OverflowingScaler({1})
    before = [p.detach().clone() for p in step.params]
    result = step(batch())
    assert result.skipped and result.bad is None
    assert all(torch.equal(a, b) for a, b in zip(before, step.params, strict=True))
    assert step.scaler.log == ["unscale_", "update"]  # no optimizer step; the scale backs off
    assert not step(batch()).skipped and step.scaler.log[-2:] == ["step", "update"]
    trainer = SimpleNamespace(
        step=lambda _batch: dataclasses.replace(result), nonfinite=NonFiniteSteps(20, 0.1)
    )
    assert Trainer.train_step(trainer, {}, 1) is None and trainer.nonfinite.scaler_skipped == 1
    assert trainer.nonfinite.total == 0  # not a non-finite step: nothing to restore


def test_scaler_skips_do_not_advance_the_schedule(tmp_path, monkeypatch):
    scaler = OverflowingScaler({2, 3})
    monkeypatch.setattr(Runtime, "grad_scaler", lambda self: scaler)
    advanced = []
    real = Schedule.after_step
    monkeypatch.setattr(Schedule, "after_step", lambda self: advanced.append(1) or real(self))
    overrides = [
        *tiny_overrides(tmp_path, objects=8),
        "trainer.epochs=1",
        "trainer.max_steps_per_epoch=3",
        "trainer.batch_size=2",
        "model.widths=[4,8]",
    ]
    result = run_command("train", overrides, tmp_path / "run")
    assert result["scaler_skipped_steps"] == 2 and result["nonfinite_steps"] == 0
    assert len(advanced) == 3  # three trained steps; the two skipped ones did not count


def test_the_nan_diagnosis_runs_under_the_runs_autocast():
    from unetcli.training.nonfinite import diagnosis_forward

    seen = []
    runtime = Runtime(torch.device("cpu"), torch.bfloat16, False, 0, False)
    model = lambda images: seen.append(torch.get_autocast_dtype("cpu")  # noqa: E731
                                       if torch.is_autocast_enabled("cpu") else None)
    diagnosis_forward(SimpleNamespace(runtime=runtime, model=model), torch.zeros(1))()
    assert seen == [torch.bfloat16]


def test_step_result_defaults_keep_old_callers():
    assert StepResult(1.0, None, torch.zeros(1)).skipped is False


def test_two_processes_on_one_gpu_are_refused_in_one_paragraph():
    from unetcli.distributed.devices import local_device
    from unetcli.distributed.env import Placement

    second = Placement(rank=1, world_size=2, local_rank=1, local_world_size=2)
    assert local_device(second, devices=2, visible="") == 1
    assert local_device(second, devices=1, visible="3") == 0  # srun --gpus-per-task: its own
    with pytest.raises(UnetError) as refused:
        local_device(second, devices=1, visible="")
    message = str(refused.value)
    assert "\n" not in message and "share one GPU" in message and "Duplicate GPU" in message
    with pytest.raises(UnetError):
        local_device(Placement(2, 3, 2, 3), devices=2, visible="0,1")


def test_ddp_skips_needless_buffer_broadcasts_and_gradient_copies():
    from unetcli.distributed.devices import ddp_options

    synced = ddp_options(on_cuda=True, device=0, sync_batchnorm=True)
    assert synced == {
        "device_ids": [0], "broadcast_buffers": False, "gradient_as_bucket_view": True
    }
    assert ddp_options(False, None, sync_batchnorm=False)["broadcast_buffers"] is True


def test_the_plan_treats_cudnn_and_cublas_allocation_failures_as_out_of_memory():
    from unetcli.plan.trials import out_of_memory

    assert out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling"))
    assert not out_of_memory(RuntimeError("shapes cannot be multiplied"))


def test_the_plan_times_with_the_device_waited_for_and_the_runtime_applied(monkeypatch):
    from unetcli.plan import trials

    events = []
    monkeypatch.setattr(trials, "sync", lambda device: events.append("sync"))
    monkeypatch.setattr(Runtime, "apply", lambda self: events.append("apply"))
    cfg = compose("plan", ["model.widths=[4,8]", "plan.steps=2"])
    runtime = Runtime(torch.device("cpu"), None, False, 0, False)
    run = trials.measure(cfg, "tiny", cfg.model, runtime, (2, 32, 32))
    assert run.failed is None and events == ["apply", "sync", "sync", "sync"]


def test_one_candidates_model_is_on_the_gpu_at_a_time_the_one_timed(tmp_path, monkeypatch):
    """The tuner's residency as on CUDA, its moves recorded instead of made: whenever a
    candidate's step runs, its model is the only one on the device."""
    from unetcli.tuning import training
    from unetcli.tuning.residency import OneOnDevice

    where: dict[int, str] = {}
    alone: list[bool] = []

    class PretendCuda(OneOnDevice):
        def __init__(self, device: torch.device) -> None:
            super().__init__(CUDA, lambda step, to: where.__setitem__(id(step), to.type))

    real_call = TrainingStep.__call__

    def call(self: TrainingStep, batch: dict) -> StepResult:
        alone.append([key for key, kind in where.items() if kind == "cuda"] == [id(self)])
        return real_call(self, batch)

    monkeypatch.setattr(training, "OneOnDevice", PretendCuda)
    monkeypatch.setattr(TrainingStep, "__call__", call)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Two candidates: fp32 and fp32-cl; three rounds, however long they take.
    cfg = tuning_config(
        tmp_path,
        "hardware.precision=fp32",
        "hardware.compile=false",
        "hardware.tune_budget.seconds=null",
    )
    runtime = training.training_runtime(cfg)
    assert "measured" in runtime.reason
    assert len(where) == 2 and len(alone) >= 2 * 4  # warm-up and 3 rounds of both
    assert all(alone)


def test_a_step_moves_with_its_optimizer_state_but_not_adams_step_count():
    from unetcli.tuning.residency import move_step

    model = torch.nn.Conv2d(3, 1, 3, padding=1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 3, 8, 8)).mean().backward()
    optimizer.step()
    step = SimpleNamespace(model=model, optimizer=optimizer)
    move_step(step, torch.device("meta"))
    assert all(p.device.type == "meta" for p in model.parameters())
    for state in optimizer.state.values():
        assert state["exp_avg"].device.type == "meta" and state["exp_avg_sq"].is_meta
        assert state["step"].device.type == "cpu"
