"""Compute lanes: every item once with its index, lanes really concurrent, a bound on how far they
run ahead, errors raised by the iteration, early close stops every lane and closes its work."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.worklist.lanes import Finished, Lanes, Step

WAIT = 30.0
"""Seconds a test waits for another lane before it gives up (a deadlock guard, not a timing)."""


def _alive_lanes() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive() and "worklist-lane" in t.name}


def test_every_item_finishes_once_with_its_index_and_its_steps_in_order() -> None:
    def work(item: int, lane: int) -> Generator[str, None, int]:
        yield f"{item}:a"
        yield f"{item}:b"
        return item * 10

    events = list(Lanes(iter(range(20)), work, 3))
    finished = [e for e in events if isinstance(e, Finished)]
    assert sorted((e.index, e.item, e.result) for e in finished) == [
        (i, i, 10 * i) for i in range(20)
    ]
    for item in range(20):
        steps = [
            e.progress for e in events if isinstance(e, Step) and e.progress.startswith(f"{item}:")
        ]
        assert steps == [f"{item}:a", f"{item}:b"]
        done = next(n for n, e in enumerate(events) if isinstance(e, Finished) and e.item == item)
        last = max(
            n for n, e in enumerate(events) if isinstance(e, Step) and e.progress == f"{item}:b"
        )
        assert last < done
    assert _alive_lanes() == set()


def test_the_lanes_work_at_the_same_time_each_set_up_once_on_its_own_thread() -> None:
    """Each item waits until every lane holds an item: only concurrent lanes get past it."""
    lanes = 3
    barrier = threading.Barrier(lanes, timeout=WAIT)
    setups: list[tuple[int, str]] = []
    ran_on: dict[int, set[str]] = {}

    def setup(lane: int) -> None:
        setups.append((lane, threading.current_thread().name))

    def work(item: int, lane: int) -> Generator[None, None, int]:
        ran_on.setdefault(lane, set()).add(threading.current_thread().name)
        barrier.wait()  # raises BrokenBarrierError (through the iteration) if the lanes were serial
        yield None
        return lane

    finished = [
        e for e in Lanes(iter(range(2 * lanes)), work, lanes, setup) if isinstance(e, Finished)
    ]
    assert len(finished) == 2 * lanes
    assert sorted(setups) == [(k, f"worklist-lane-{k}") for k in range(lanes)]
    assert ran_on == {k: {f"worklist-lane-{k}"} for k in range(lanes)}
    assert {e.lane for e in finished} == set(range(lanes))


def test_a_slow_consumer_holds_the_lanes_back() -> None:
    started = 0
    lock = threading.Lock()

    def work(item: int, lane: int) -> Generator[int, None, int]:
        nonlocal started
        with lock:
            started += 1
        yield item
        return item

    ahead = []
    consumed = 0
    with Lanes(iter(range(40)), work, 2) as lanes:
        for event in lanes:
            threading.Event().wait(0.01)  # a slow consumer: the lanes run ahead as far as they may
            consumed += isinstance(event, Step)
            with lock:
                ahead.append(started - consumed)
    assert consumed == 40
    # waiting reports (2 per lane) + one report in each lane's hand + the one being consumed
    assert max(ahead) <= 2 * 2 + 2 + 1


def test_an_error_on_one_lane_stops_every_lane_and_is_raised() -> None:
    closed: list[int] = []
    other_started = threading.Event()

    def work(item: int, lane: int) -> Generator[int, None, int]:
        try:
            if item == 0:
                assert other_started.wait(WAIT)  # the other lane is working on item 1
                raise ValueError("lane failure 0")
            other_started.set()
            while True:  # never ends by itself: only the stop flag ends this item
                yield item
        finally:
            closed.append(item)

    with pytest.raises(ValueError, match="lane failure 0"):
        for _ in Lanes(iter(range(6)), work, 2):
            pass
    assert _alive_lanes() == set()
    assert sorted(closed) == [0, 1]  # the other lane's work was closed, nothing else was taken


def test_close_stops_the_lanes_at_their_next_step_and_closes_their_work() -> None:
    closed: list[int] = []
    taken: list[int] = []

    def work(item: int, lane: int) -> Generator[int, None, int]:
        taken.append(item)
        try:
            while True:
                yield item
        finally:
            closed.append(item)

    lanes = Lanes(iter(range(100)), work, 2)
    seen: set[int] = set()
    for event in lanes:
        assert isinstance(event, Step)
        seen.add(event.lane)
        if seen == {0, 1}:
            break
    lanes.close()
    assert _alive_lanes() == set()
    assert sorted(closed) == sorted(taken) and len(taken) == 2
    lanes.close()  # idempotent


def test_bad_lane_counts_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="lanes must be >= 1, got 0"):
        Lanes(iter(()), lambda item, lane: iter(()), 0)  # type: ignore[arg-type,return-value]
