"""The resumable gzip submission writer and the ordered, bounded finishing pipeline."""

from __future__ import annotations

import gzip
import random
import sys
import threading
import time
from pathlib import Path

import pytest

from unetcli.errors import UnetError
from unetcli.inference.ordered import OrderedWork
from unetcli.submission.writer import SubmissionWriter, complete_prefix

NAMES = [f"{i:04d}_{i % 16 + 1:02d}.jpg" for i in range(40)]


def rle_for(i: int) -> str:
    return " ".join(f"{1 + 7 * k + i} {k + 1}" for k in range(i % 9))


def write_all(path: Path, start: int = 0, resume: bool = False, **kwargs) -> SubmissionWriter:
    with SubmissionWriter(path, resume=resume, expected=NAMES, rows_per_member=3, **kwargs) as w:
        for i in range(w.rows, len(NAMES)):
            w.write(NAMES[i], rle_for(i))
    return w


def test_rows_stream_to_a_temporary_name_then_rename(tmp_path):
    path = tmp_path / "submission.csv.gz"
    write_all(path)
    assert path.is_file() and not (tmp_path / "submission.csv.gz.tmp").exists()
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert lines[0] == "img,rle_mask" and len(lines) == len(NAMES) + 1
    assert lines[5] == f"{NAMES[4]},{rle_for(4)}"


def test_a_failed_run_leaves_only_the_temporary_file(tmp_path):
    path = tmp_path / "submission.csv.gz"
    with pytest.raises(RuntimeError), SubmissionWriter(path, rows_per_member=3) as w:
        for i in range(10):
            w.write(NAMES[i], rle_for(i))
        raise RuntimeError("killed")
    assert not path.exists()
    # Every row written before the failure is in complete members.
    assert complete_prefix(path.with_name(path.name + ".tmp"), NAMES)[1] == 10


def test_resume_after_a_kill_at_any_byte_gives_the_same_content(tmp_path):
    reference = tmp_path / "reference.csv.gz"
    write_all(reference)
    data = reference.read_bytes()
    expected = gzip.decompress(data)
    offsets = sorted({0, 1, 10, len(data) - 1, *random.Random(0).sample(range(len(data)), 40)})
    for cut in offsets:
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        path = folder / "submission.csv.gz"
        # What a kill leaves: a prefix of the bytes that would have been written.
        (folder / "submission.csv.gz.tmp").write_bytes(data[:cut])
        writer = write_all(path, resume=True)
        assert gzip.decompress(path.read_bytes()) == expected, f"cut at byte {cut}"
        assert writer.resumed_rows <= len(NAMES)
    # A cut late in the file keeps most rows.
    assert writer.resumed_rows >= len(NAMES) - 3


def test_resume_refuses_a_file_of_other_images(tmp_path):
    path = tmp_path / "submission.csv.gz"
    with pytest.raises(RuntimeError), SubmissionWriter(path, rows_per_member=2) as w:
        for i in range(6):
            w.write(NAMES[i], rle_for(i))
        raise RuntimeError("stop")
    other = list(reversed(NAMES))
    with (
        pytest.raises(UnetError, match="other input images"),
        SubmissionWriter(path, resume=True, expected=other),
    ):
        pass


def test_ordered_work_keeps_order_under_random_delays():
    seen: list[int] = []

    def work(i: int) -> int:
        time.sleep(random.random() * 0.003)
        return i * i

    with OrderedWork(work, seen.append, threads=4, max_pending=5) as pool:
        for i in range(60):
            pool.submit(i)
    assert seen == [i * i for i in range(60)]


def blocked_waiting_for_room(thread: threading.Thread) -> bool:
    """Whether `thread` is inside OrderedWork.submit, waiting in queue.put for a free slot.

    Read from the thread's current Python stack: innermost `wait` (a Condition),
    called by `put`, called by `submit`. Only a full queue makes put wait.
    """
    frame = sys._current_frames().get(thread.ident)
    names = []
    while frame is not None and len(names) < 3:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names == ["wait", "put", "submit"]


def test_ordered_work_bounds_what_is_pending():
    """With the work stuck, exactly max_pending + 1 submits return; the next one waits.

    The consumer holds the oldest result (waiting for it), the queue holds
    max_pending more, so the sixth `submit` must block until work resumes.
    """
    release = threading.Event()
    submitted: list[int] = []
    consumed: list[int] = []

    def work(i: int) -> int:
        release.wait(30)
        return i

    def feed(pool: OrderedWork) -> None:
        for i in range(50):
            pool.submit(i)
            submitted.append(i)

    with OrderedWork(work, consumed.append, threads=2, max_pending=4) as pool:
        feeder = threading.Thread(target=feed, args=(pool,), daemon=True)
        feeder.start()
        try:
            # Poll the feeder's state (not a timed guess): it ends up either blocked
            # in put (a bounded queue) or finished (an unbounded one).
            poll = threading.Event()
            while feeder.is_alive() and not (
                len(submitted) >= 5 and blocked_waiting_for_room(feeder)
            ):
                poll.wait(0.005)
            assert feeder.is_alive(), "submit never blocked although the work was stuck"
            assert submitted == [0, 1, 2, 3, 4] and consumed == []
        finally:
            release.set()
        feeder.join(30)
    assert submitted == list(range(50)) and consumed == list(range(50))


@pytest.mark.parametrize(
    ("where", "error", "message"),
    [("work", ValueError, "bad image 7"), ("consume", OSError, "disk full")],
)
def test_ordered_work_raises_errors_in_the_submitting_thread(where, error, message):
    def work(i: int) -> int:
        if where == "work" and i == 7:
            raise ValueError("bad image 7")
        return i

    def consume(i: int) -> None:
        if where == "consume" and i == 7:
            raise OSError("disk full")

    submitted = 0
    with pytest.raises(error, match=message), OrderedWork(work, consume, 2, 3) as pool:
        for i in range(100):
            pool.submit(i)
            submitted += 1
    # Raised by submit while feeding, not at the end: once the consumer stopped at
    # item 7, at most the 3 queued behind it could be submitted.
    assert 8 <= submitted <= 11
