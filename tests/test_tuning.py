"""The hardware tuner behind hardware=auto: it measures, picks the faster setting, honours
forced keys, drops broken candidates, keeps to its budget and remembers its answer.

In-process, on the tiny synthetic model. The tuner's clock is replaced by one that only
the instrumented steps move: each real training step counts as STEP seconds, a slowed
candidate's as STEP + SLOWER, so the right answer and the budget's arithmetic are known in
advance and no verdict depends on the machine's load.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers import compose, tuning_config
from unetcli.core.checkpoints import save_checkpoint
from unetcli.models.contract import build_model
from unetcli.training.step import StepResult
from unetcli.tuning import training
from unetcli.tuning.candidates import Candidate
from unetcli.tuning.inference import inference_runtime
from unetcli.tuning.paired_timing import measure

STEP = 0.02  # seconds a training step counts on the tuner's clock
SLOWER = 0.08  # seconds added to a slowed candidate's step


class StepClock:
    """`time` for the tuner's modules: `perf_counter` reads seconds that pass only when
    a step says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


TIMED_MODULES = ("paired_timing", "tune_budget", "threads")


@pytest.fixture(scope="module", autouse=True)
def warm_process(tmp_path_factory):
    """Pay the process's one-time costs (first backward, oneDNN set-up) before any budget
    is timed, so that no test's result depends on running first."""
    cfg = tuning_config(tmp_path_factory.mktemp("warm"), "hardware.tune=false")
    for layout in (torch.contiguous_format, torch.channels_last):
        model = build_model(cfg.model).to(memory_format=layout)
        images = torch.randn(2, 3, 48, 64).contiguous(memory_format=layout)
        model(images).mean().backward()
        torch.optim.Adam(model.parameters()).step()  # its first step imports torch._dynamo


def instrumented(monkeypatch, slow: str | None = None, nan: str | None = None) -> list[str]:
    """Wrap the tuner's real training step: record each call's candidate; slow or break one.

    The tuner's clock becomes a StepClock that each wrapped step moves on."""
    calls: list[str] = []
    real = training.fresh_step
    clock = StepClock()
    for module in TIMED_MODULES:
        monkeypatch.setattr(f"unetcli.tuning.{module}.time", clock)

    def make(cfg, runtime, loss_fn, model_cfg=None):
        step = real(cfg, runtime, loss_fn, model_cfg)
        name = Candidate(runtime.precision, runtime.channels_last, runtime.compile).name

        def wrapped(batch: dict) -> StepResult:
            calls.append(name)
            clock.now += STEP + (SLOWER if name == slow else 0.0)
            result = step(batch)
            return dataclasses.replace(result, loss=math.nan) if name == nan else result

        return wrapped

    monkeypatch.setattr(training, "fresh_step", make)
    return calls


def hardware_json(root: Path) -> dict:
    return json.loads((root / "run" / "hardware.json").read_text())


@pytest.mark.parametrize("slow, fast", [("fp32", "fp32-cl"), ("fp32-cl", "fp32")])
def test_picks_the_faster_of_two_candidates(tmp_path, monkeypatch, slow, fast):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    instrumented(monkeypatch, slow=slow)
    cfg = tuning_config(tmp_path, "hardware.precision=fp32")
    runtime = training.training_runtime(cfg)
    report = hardware_json(tmp_path)
    assert report["source"] == "measured" and report["chosen"] == fast
    assert report["rates"][fast] > report["rates"][slow]
    assert runtime.channels_last == (fast == "fp32-cl")
    # The start line names the choice and the measurements behind it.
    line = runtime.describe()
    assert line.startswith("cpu fp32" + (" channels-last" if fast == "fp32-cl" else ""))
    assert "(measured: " + fast in line and " img/s" in line


def test_a_forced_precision_is_kept_even_when_slower(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = instrumented(monkeypatch, slow="fp32")
    runtime = training.training_runtime(tuning_config(tmp_path, "hardware.precision=bf16"))
    assert runtime.precision == "bf16"
    assert set(calls) == {"bf16", "bf16-cl"}  # only the layout was measured
    # Both keys forced: nothing to measure.
    calls.clear()
    cfg = tuning_config(tmp_path, "hardware.precision=bf16", "hardware.channels_last=true")
    runtime = training.training_runtime(cfg)
    assert calls == [] and (runtime.precision, runtime.channels_last) == ("bf16", True)
    assert "forced by hardware.precision=bf16 hardware.channels_last=true" in runtime.describe()


def test_the_second_run_reuses_the_cache_without_measuring(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = instrumented(monkeypatch, slow="fp32")
    first = training.training_runtime(tuning_config(tmp_path))
    assert calls and list((tmp_path / "cache" / "unetcli" / "tuning").glob("*.json"))
    calls.clear()
    second = training.training_runtime(tuning_config(tmp_path))
    assert calls == []
    assert hardware_json(tmp_path)["source"] == "cache"
    assert (second.precision, second.channels_last) == (first.precision, first.channels_last)
    # Another batch size is another key: measured again.
    training.training_runtime(tuning_config(tmp_path, "trainer.batch_size=4"))
    assert calls


def test_a_candidate_whose_loss_is_not_finite_is_out(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    instrumented(monkeypatch, slow="fp32", nan="fp32-cl")
    runtime = training.training_runtime(tuning_config(tmp_path, "hardware.precision=fp32"))
    report = hardware_json(tmp_path)
    assert report["dropped"] == {"fp32-cl": "not finite (nan)"}
    assert list(report["rates"]) == ["fp32"] and not runtime.channels_last
    assert "out: fp32-cl not finite" in runtime.describe()


def test_tuning_keeps_within_its_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = instrumented(monkeypatch, slow="fp32")
    cfg = tuning_config(
        tmp_path, "hardware.tune_budget.seconds=1.5", "hardware.tune_budget.rounds=20"
    )
    training.training_runtime(cfg)
    report = hardware_json(tmp_path)
    # The clock starts at the first timed step; a round starts only while the
    # last one's time still fits, so the overrun is less than one round.
    one_round = sum(8 / rate for rate in report["rates"].values())
    assert 1.5 - one_round < report["seconds"] <= 1.5 + one_round
    # The slowed candidate steps once per round after its warm-up call (the thread
    # trial, when it fits, runs the chosen one's step only).
    assert 1 <= report["rounds"] < 20 and calls.count("fp32") == report["rounds"] + 1


def test_a_share_of_the_run_is_a_share_of_the_fastest_candidates_steps(monkeypatch):
    """The run takes the fastest candidate's steps: a slow candidate must not stretch the
    share (with the mean of the two steps here it would allow about 0.55 s, not 0.1 s)."""
    clock = StepClock()
    monkeypatch.setattr("unetcli.tuning.paired_timing.time", clock)
    planned_share = 20  # share x planned steps: the limit is 20 steps of the run

    def limit(step_seconds: float) -> float:
        return planned_share * step_seconds - clock.now

    def taking(seconds: float):
        def step() -> float:
            clock.now += seconds
            return 1.0

        return step

    out = measure({"slow": taking(0.05), "fast": taking(0.005)}, 8, limit, rounds=50)
    assert out.rounds >= 1 and out.rates["fast"] > out.rates["slow"]
    assert out.seconds < 0.3, (out.rounds, out.seconds)


def test_a_single_candidate_is_timed_for_one_round_only():
    """Nothing to compare it with: its step time needs one round, not the budget's seven."""
    out = measure({"only": lambda: 1.0}, 8, lambda _: float("inf"), rounds=7)
    assert out.rounds == 1 and list(out.rates) == ["only"]


def test_a_run_too_short_for_one_round_builds_nothing_to_time(tmp_path, monkeypatch):
    """3% of a 2-epoch run of a few steps is under one step: no step time makes it hold a
    round, so the tuner neither builds the data and models nor times a step; the rule
    decides."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = instrumented(monkeypatch)
    monkeypatch.setattr(training, "build_training_data", None)  # would fail if called
    cfg = tuning_config(tmp_path, "hardware.tune_budget.share=0.03", "trainer.epochs=2")
    assert 0.03 * training.planned_steps(cfg) < 1
    runtime = training.training_runtime(cfg)
    assert calls == [] and hardware_json(tmp_path)["source"] == "rule"
    assert "less than one round" in runtime.describe()


def test_tune_false_keeps_the_rule(tmp_path, monkeypatch):
    calls = instrumented(monkeypatch)
    cfg = tuning_config(tmp_path, "hardware.tune=false", "hardware.channels_last=true")
    runtime = training.training_runtime(cfg)
    assert calls == [] and hardware_json(tmp_path)["source"] == "rule"
    assert runtime.channels_last and "(hardware.tune=false: rule)" in runtime.describe()


def test_evaluate_and_predict_time_forward_passes(tmp_path, monkeypatch):
    """The inference tuner reads the checkpoint's model config and measures it forward only."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    trained = tuning_config(tmp_path)
    checkpoint = tmp_path / "best.pt"
    model = build_model(trained.model)
    config = OmegaConf.to_container(trained, resolve=True)
    save_checkpoint({"config": config, "model": model.state_dict(), "epoch": 1}, checkpoint)
    cfg = compose(
        "evaluate",
        [
            f"checkpoint={checkpoint}",
            "hardware=cpu",
            "hardware.precision=fp32",
            "hardware.tune_budget.seconds=1",
            f"paths.run_dir={tmp_path / 'eval'}",
        ],
    )
    runtime = inference_runtime(cfg, checkpoint, "evaluate")
    report = json.loads((tmp_path / "eval" / "hardware.json").read_text())
    assert report["mode"] == "evaluate" and report["source"] == "measured"
    assert set(report["rates"]) == {"fp32", "fp32-cl"}
    assert runtime.precision == "fp32" and "measured: " in runtime.describe()


def test_a_run_in_two_processes_plans_half_the_steps_of_each(tmp_path):
    """Each process takes half of every epoch: the budget's share is of those steps."""
    cfg = tuning_config(tmp_path, "trainer.batch_size=2", "trainer.epochs=3")
    one = training.planned_steps(cfg)
    assert one == 3 * 3  # 6 training images of 4 objects x 2 views (2 validate), batch 2
    assert training.planned_steps(cfg, processes=2) == 3 * 1  # 3 images each: 1 whole batch
