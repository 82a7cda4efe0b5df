"""A full disk or a read-only output folder while writing a checkpoint, TensorBoard events, a
submission or a mask PNG: the previous good file stays, the error names the path and the free
space, and nothing half-written is left under the final name.

A full disk is a file-size limit (RLIMIT_FSIZE, as the download tests use): writes past it fail
with EFBIG as they would with ENOSPC. It is set on this process's soft limit only inside
`size_limit` and restored after. A read-only folder is a real one; as root (who may write
anywhere) the folder is bind-mounted read-only in a private mount namespace (`unshare -m`), so
writes fail with EROFS as on a read-only disk; otherwise it is chmod 555.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unetcli.core.checkpoints import load_checkpoint, save_checkpoint
from unetcli.errors import UnetError
from unetcli.postprocessing.pictures import write_png
from unetcli.submission.writer import SubmissionWriter
from unetcli.training.run_log import RunLog

LIMIT = 200_000  # bytes a file may reach inside size_limit()
# TensorBoard's writer thread also reports (as a warning, maybe during a later test of this
# file) the error it hands on to the next call, which the TensorBoard test asserts.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@contextlib.contextmanager
def size_limit(limit: int = LIMIT):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def assert_reported(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert str(path) in message and "MiB free" in message, message
    assert "file is larger than allowed" in message or "read-only" in message, message


def test_checkpoint_on_a_full_disk_keeps_the_last_good_one(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}, "config": {}, "epoch": 1}, path)
    with size_limit(), pytest.raises(UnetError) as err:
        save_checkpoint({"model": {"w": torch.ones(LIMIT)}, "config": {}, "epoch": 2}, path)
    assert_reported(err, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_mask_png_on_a_full_disk_keeps_the_previous_file(tmp_path):
    path = tmp_path / "masks" / "a.png"
    path.parent.mkdir()
    write_png(path, np.zeros((8, 8), np.uint8))
    before = path.read_bytes()
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    with size_limit(), pytest.raises(UnetError) as err:
        write_png(path, noise)
    assert_reported(err, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.png"]


def test_submission_on_a_full_disk_leaves_no_file_under_the_final_name(tmp_path):
    path = tmp_path / "submission.csv.gz"
    rng = np.random.default_rng(0)
    with size_limit(), pytest.raises(UnetError) as err, SubmissionWriter(path) as writer:
        for i in range(200):
            writer.write(f"{i}.jpg", " ".join(map(str, rng.integers(1, 10**9, 2000))))
    assert_reported(err, path)
    assert not path.exists()


def test_tensorboard_events_on_a_full_disk_name_the_folder(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with size_limit(), pytest.raises(UnetError) as err, RunLog(tmp_path) as log:
        for epoch in range(1, 20):
            log.image("val/examples", noise, epoch)
            log.epoch(epoch, {"train/loss": 0.5}, 1e-3, 1.0)
    assert_reported(err, tmp_path / "tensorboard")


WRITERS = {
    "checkpoint": "save_checkpoint({'model': {}, 'config': {}, 'epoch': 2}, out / 'last.pt')",
    "png": "write_png(out / 'a.png', np.ones((4, 4), np.uint8))",
    "submission": "with SubmissionWriter(out / 'submission.csv.gz') as w: w.write('a.jpg', '1 2')",
    "tensorboard": "RunLog(out).close()",
}
CALL_EACH = """
import sys; from pathlib import Path; import numpy as np
from unetcli.core.checkpoints import save_checkpoint
from unetcli.errors import UnetError
from unetcli.postprocessing.pictures import write_png
from unetcli.submission.writer import SubmissionWriter
from unetcli.training.run_log import RunLog
out = Path(sys.argv[1])
for call in sys.argv[2:]:
    try:
        exec(call)
        print("WROTE")
    except UnetError as err:
        print(err)
"""


@pytest.mark.slow
def test_a_read_only_folder_is_reported_and_nothing_changes(tmp_path):
    """Each writer into a folder that cannot be written: one paragraph, the old files intact."""
    out = tmp_path / "run"
    save_checkpoint({"model": {}, "config": {}, "epoch": 1}, out / "last.pt")
    read_only = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', out]
    if os.geteuid() != 0:
        os.chmod(out, 0o555)
        read_only = []
    try:
        proc = subprocess.run(
            [*read_only, sys.executable, "-c", CALL_EACH, out, *WRITERS.values()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.chmod(out, 0o755)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    messages = proc.stdout.strip().splitlines()
    assert len(messages) == len(WRITERS), proc.stdout
    for name, message in zip(WRITERS, messages):
        assert "read-only" in message and str(out) in message, (name, message)
        assert "MiB free" in message, (name, message)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
