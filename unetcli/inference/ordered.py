"""Work on a thread pool whose results are consumed in submission order, with bounded queues.

The inference engine's last stage: each image's probabilities are finished (resized back,
thresholded, encoded or scored: OpenCV and NumPy release the GIL) on pool threads, and one
consumer thread takes the results in input order (writes the gzip rows, adds up metrics).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

_STOP = object()


class OrderedWork:
    """Run `work(*args)` on `threads` threads; pass results to `consume` in submission order.

    `submit` blocks while `max_pending` results wait, and re-raises the first
    error of a worker or of `consume` in the submitting thread. Leaving the
    `with` block normally waits for everything; leaving it with an exception
    drops what is still pending (a resumable writer recomputes it).
    """

    def __init__(
        self,
        work: Callable[..., Any],
        consume: Callable[[Any], None],
        threads: int,
        max_pending: int,
    ) -> None:
        self._work = work
        self._consume = consume
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="unet-encode")
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                future = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._abort.is_set():
                    return
                continue
            if future is _STOP or self._abort.is_set():
                return
            try:
                self._consume(future.result())
            except BaseException as err:  # handed to the submitting thread, then re-raised
                self._error = err
                self._abort.set()
                return

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, *args: Any) -> None:
        self._raise_pending_error()
        future: Future = self._pool.submit(self._work, *args)
        while True:
            try:
                self._queue.put(future, timeout=0.1)
                return
            except queue.Full:
                self._raise_pending_error()

    def __enter__(self) -> OrderedWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join()
            self._pool.shutdown(wait=True)
            self._raise_pending_error()
        else:
            self._abort.set()
            self._thread.join()
            self._pool.shutdown(wait=True, cancel_futures=True)
