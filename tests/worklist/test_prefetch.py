"""The bounded prefetch queue: order, bound on loaded-ahead items, errors handed over, early close."""

from __future__ import annotations

import threading
import time

import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.worklist.prefetch import Prefetcher


def test_items_arrive_in_order_and_the_loader_stays_within_the_bound() -> None:
    loaded: list[int] = []
    ahead: list[int] = []

    def load(item: int) -> int:
        loaded.append(item)
        return item * 10

    consumed = 0
    with Prefetcher(range(8), load, depth=2) as prefetcher:
        for entry in prefetcher:
            time.sleep(0.02)  # a slow consumer: the loader runs ahead as far as it may
            ahead.append(len(loaded) - consumed)
            consumed += 1
            assert entry.value == entry.item * 10 and entry.error is None
    assert loaded == list(range(8))
    assert max(ahead) <= 2 + 1 + 1  # queue depth + the one being loaded + the one being consumed


def test_a_failing_load_is_handed_over_not_raised() -> None:
    def load(item: int) -> int:
        if item == 1:
            raise ValueError("bad item 1")
        return item

    with Prefetcher([0, 1, 2], load) as prefetcher:
        entries = list(prefetcher)
    assert [e.item for e in entries] == [0, 1, 2]
    assert str(entries[1].error) == "bad item 1" and entries[1].value is None


def test_close_stops_a_blocked_loader() -> None:
    started = threading.Event()

    def load(item: int) -> int:
        started.set()
        return item

    prefetcher = Prefetcher(range(100), load, depth=1)
    iterator = iter(prefetcher)
    next(iterator)
    started.wait(1)
    prefetcher.close()
    assert not prefetcher._thread.is_alive()


def test_depth_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="prefetch depth must be >= 1, got 0"):
        Prefetcher([], lambda item: item, depth=0)
