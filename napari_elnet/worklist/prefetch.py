"""A bounded prefetch queue: one loader thread reads the next items while the caller computes.

The loader runs ``load(item)`` for the items in order and puts ``(item, value, error)`` into a queue of
at most ``depth`` entries, so at most ``depth`` loaded items wait in memory (plus the one being loaded
and the one being computed). An exception of ``load`` is handed over as the entry's ``error``, never
raised in the thread. :meth:`Prefetcher.close` stops the thread at its next item and waits for it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from napari_elnet.common.errors import ConfigurationError

T = TypeVar("T")
V = TypeVar("V")
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Loaded(Generic[T, V]):
    """One loaded item: ``value`` on success, else ``error``; ``seconds`` spent loading it."""

    item: T
    value: V | None
    error: BaseException | None
    seconds: float


class _End:
    """Marks the end of the items."""


class Prefetcher(Generic[T, V]):
    """Iterate over ``Loaded`` entries, loading ahead on a background thread.

    Args:
        items: What to load, in order.
        load: Loads one item (runs on the loader thread).
        depth: Most loaded entries kept waiting (>= 1).

    Use as a context manager, or call :meth:`close`, so the thread ends when iteration stops early.
    """

    def __init__(self, items: Sequence[T], load: Callable[[T], V], depth: int = 2) -> None:
        if depth < 1:
            raise ConfigurationError(f"prefetch depth must be >= 1, got {depth}")
        self._items = list(items)
        self._load = load
        self._queue: queue.Queue[Loaded[T, V] | _End] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worklist-prefetch", daemon=True)
        self._started = False

    def __enter__(self) -> Prefetcher[T, V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Loaded[T, V]]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            try:
                entry = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._thread.is_alive() or not self._queue.empty():
                    continue
                return  # stopped by close() before the end of the items
            if isinstance(entry, _End):
                return
            yield entry

    def close(self) -> None:
        """Stop loading and wait for the loader thread (the item being loaded finishes first)."""
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(_POLL_SECONDS)
        self._drain()

    def _drain(self) -> None:
        """Drop waiting entries so a blocked ``put`` returns."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _put(self, entry: Loaded[T, V] | _End) -> bool:
        """Put an entry, giving up when stopped; False when stopped."""
        return put_unless_stopped(self._queue, entry, self._stop, _POLL_SECONDS)

    def _run(self) -> None:
        for item in self._items:
            if self._stop.is_set():
                return
            start = time.perf_counter()
            try:
                value, error = self._load(item), None
            except Exception as exc:  # handed to the consumer as this item's error
                value, error = None, exc
            if not self._put(Loaded(item, value, error, time.perf_counter() - start)):
                return
        self._put(_End())


Q = TypeVar("Q")


def put_unless_stopped(
    target: queue.Queue[Q], item: Q, stop: threading.Event, poll_seconds: float
) -> bool:
    """Put ``item`` into a bounded queue, waiting while it is full; give up once ``stop`` is set
    (checked every ``poll_seconds``). True when put, False when stopped."""
    while not stop.is_set():
        try:
            target.put(item, timeout=poll_seconds)
            return True
        except queue.Full:
            continue
    return False
