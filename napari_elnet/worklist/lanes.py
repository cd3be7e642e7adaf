"""Compute lanes: N threads that each take the next item and run a step generator on it.

Each lane takes items from one shared iterator (in its order, one at a time under a lock), runs
``work(item, lane)`` step by step and reports every step and every finished item to the consumer,
which iterates over :class:`Lanes` on its own thread. At most ``2 * lanes`` reports wait for the
consumer: a lane with a report to hand over waits, so the lanes run no further ahead of a slow
consumer than that (as a generator computes only when it is asked for its next step). Items
finish out of order; each
:class:`Finished` carries the item's position in the iterator. The lanes check the stop flag
before every step: :meth:`Lanes.close` stops them at their next step (closing the step generator
they were running, so its ``finally`` clauses run) and waits for them.

Threads share the GIL: lanes pay off only when the work spends its time in code that releases it
(torch's and numpy's kernels), as the worklist's triage does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.worklist.prefetch import put_unless_stopped

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Step(Generic[P]):
    """One step of the work on lane ``lane``: what its generator yielded."""

    lane: int
    progress: P


@dataclass(frozen=True)
class Finished(Generic[T, R]):
    """Item number ``index`` (0-based, in the iterator's order) finished on ``lane``."""

    lane: int
    index: int
    item: T
    result: R


@dataclass(frozen=True)
class _Failed:
    """A lane raised outside the work's own error handling."""

    error: BaseException


@dataclass(frozen=True)
class _LaneEnd:
    """A lane has stopped."""


_END = object()


class Lanes(Generic[T, P, R]):
    """Iterate over the steps and results of ``lanes`` threads working through ``items``.

    Args:
        items: What to work on; read by the lanes (one ``next`` at a time, under a lock).
        work: A step generator for one item on one lane (``lane`` in ``0 .. lanes - 1``); it
            returns the item's result.
        lanes: Number of threads (>= 1).
        setup: Called once on each lane's thread before its first item (e.g. to set torch's
            thread count of that thread).

    Use as a context manager, or call :meth:`close`, so the threads end when iteration stops early.
    An exception raised by ``work`` (or ``setup``) on a lane stops every lane and is raised by the
    iteration.

    Attributes:
        wait_seconds: Per lane, seconds spent waiting for the next item.
    """

    def __init__(
        self,
        items: Iterator[T],
        work: Callable[[T, int], Generator[P, None, R]],
        lanes: int,
        setup: Callable[[int], None] | None = None,
    ) -> None:
        if lanes < 1:
            raise ConfigurationError(f"lanes must be >= 1, got {lanes}")
        self._items = items
        self._work = work
        self._setup = setup
        self._lock = threading.Lock()
        self._taken = 0
        self._stop = threading.Event()
        self._events: queue.Queue[Step[P] | Finished[T, R] | _Failed | _LaneEnd] = queue.Queue(
            maxsize=2 * lanes
        )
        self._threads = [
            threading.Thread(target=self._run, args=(k,), name=f"worklist-lane-{k}", daemon=True)
            for k in range(lanes)
        ]
        self._started = False
        self.wait_seconds = [0.0] * lanes

    def __enter__(self) -> Lanes[T, P, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Step[P] | Finished[T, R]]:
        if self._started:
            raise RuntimeError("Lanes can be iterated once")
        self._started = True
        for thread in self._threads:
            thread.start()
        running = len(self._threads)
        while running:
            try:
                event = self._events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if isinstance(event, _LaneEnd):
                running -= 1
            elif isinstance(event, _Failed):
                self.close()
                raise event.error
            else:
                yield event

    def close(self) -> None:
        """Stop every lane at its next step and wait for the threads (idempotent)."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _put(self, event: Step[P] | Finished[T, R] | _Failed | _LaneEnd) -> bool:
        """Hand ``event`` to the consumer, waiting while it has enough; False when stopped."""
        return put_unless_stopped(self._events, event, self._stop, _POLL_SECONDS)

    def _next(self, lane: int) -> tuple[int, object]:
        """The next item and its index, or ``_END``; counts the wait."""
        start = time.perf_counter()
        with self._lock:
            item = _END if self._stop.is_set() else next(self._items, _END)
            index = self._taken
            self._taken += item is not _END
        self.wait_seconds[lane] += time.perf_counter() - start
        return index, item

    def _run(self, lane: int) -> None:
        try:
            if self._setup is not None:
                self._setup(lane)
            while not self._stop.is_set():
                index, item = self._next(lane)
                if item is _END:
                    return
                steps = self._work(item, lane)  # type: ignore[arg-type]
                try:
                    while True:
                        if self._stop.is_set():
                            return
                        try:
                            progress = next(steps)
                        except StopIteration as stop:
                            result: R = stop.value
                            break
                        if not self._put(Step(lane, progress)):
                            return
                finally:
                    steps.close()
                if not self._put(Finished(lane, index, item, result)):  # type: ignore[arg-type]
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failed(exc))
        finally:
            self._put(_LaneEnd())
