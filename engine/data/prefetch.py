"""Training batches made ahead in a background thread while the model steps on the last one.

A DataLoader without worker processes (``num_workers=0``: the default on fewer than 4
cores) makes each batch in the training loop's own thread, so the model waits for every
one. A thread rather than a worker process: nothing is pickled or copied between
processes, and numpy and torch release the GIL in their kernels, so with the core the
thread budget leaves to data loading (``engine.threads``) the next batch is usually ready
when a step ends. On the demo the loop's wait for data went from 10.6 % of the epoch to
1.5 % (``bench/bench_engine.py``).

Batches come out in the loader's order and are made by the same code, so a run is the
same with or without it (``tests/test_prefetch.py``). An exception raised while making a
batch is raised by the loop that asked for it, with its traceback; leaving the loop early
(a stop request) stops the thread after the batch it is making. With worker processes the
DataLoader prefetches by itself and this does nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_END = object()


def batches_ahead(depth: int, loader_workers: int) -> int:
    """How many batches a thread makes ahead: ``depth`` without loader worker processes,
    none with them (the DataLoader prefetches by itself)."""
    return max(int(depth), 0) if loader_workers == 0 else 0


class Prefetched:
    """``with Prefetched(loader, depth) as batches: for batch in batches: ...``: up to
    ``depth`` batches made ahead (0: none, the loader is iterated directly)."""

    def __init__(self, loader: Iterable[Any], depth: int):
        self.loader = loader
        self.depth = batches_ahead(depth, getattr(loader, "num_workers", 0))
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(max(self.depth, 1))
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Prefetched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        if self.depth <= 0:
            yield from self.loader
            return
        # the sampler's epoch (and a resume's skip) must be set before this loop starts:
        # the thread reads the sampler's order on its first batch
        batches = iter(self.loader)
        self._thread = threading.Thread(
            target=self._work, args=(batches,), name="slr-prefetch", daemon=True
        )
        self._thread.start()
        while True:
            batch, error = self._queue.get()
            if error is not None:
                raise error
            if batch is _END:
                return
            yield batch

    def _put(self, item: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, batches: Iterator[Any]) -> None:
        try:
            for batch in batches:
                if not self._put((batch, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the training loop
            self._put((None, exc))

    def close(self) -> None:
        """Stop making batches (the one being made is finished and dropped)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)
