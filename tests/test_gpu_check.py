"""scripts/gpu_check.py, the GPU acceptance check, run in its CPU mode: every check that does
not need CUDA passes at tiny sizes, the others are reported as skipped, not failed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_cpu_mode_passes_and_prints_every_row(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    command = [sys.executable, str(SCRIPT), "--cpu", "--out", str(tmp_path / "out")]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert table in proc.stdout
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| check")}  # fmt: skip
    for name, _, needs_cuda in _script().CHECKS:
        assert rows[name] == ("skipped: no CUDA" if needs_cuda else "pass"), (name, table)


def test_synchronisations_are_counted_inside_the_profiled_steps_only(tmp_path):
    events = [
        {"name": "cudaDeviceSynchronize", "ts": 1.0},  # the profiler's own, before the steps
        {"name": "ProfilerStep#1", "ts": 10.0, "dur": 5.0},
        {"name": "cudaStreamSynchronize", "ts": 12.0},
        {"name": "ProfilerStep#2", "ts": 20.0, "dur": 5.0},
        {"name": "cudaStreamSynchronize", "ts": 21.0},
        {"name": "cudaDeviceSynchronize", "ts": 30.0},  # after them
    ]
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"traceEvents": events}))
    assert _script().syncs_in_steps(trace) == (2, 2)
