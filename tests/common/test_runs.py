"""Cancellable runs: the relay of a progress generator (result, cancel between steps, errors)."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from napari_elnet.common.runs import RunEnd, relay
from napari_elnet.common.steps import run_to_end


class _Counter:
    """A progress generator that records which of its steps ran and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.ran: list[int] = []
        self.closed = False

    def steps(self) -> Generator[int, None, str]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ValueError(f"step {i} failed")
                self.ran.append(i)
                yield i
            return f"done {self.n}"
        finally:
            self.closed = True


def test_relays_every_progress_and_the_result() -> None:
    counter = _Counter(3)
    seen: list[int] = []
    end = run_to_end(relay(counter.steps()), seen.append)
    assert end == RunEnd(result="done 3")
    assert end.completed and seen == [0, 1, 2] and counter.closed


def test_cancel_stops_before_the_next_step_and_closes_the_generator() -> None:
    counter = _Counter(10)
    cancel = threading.Event()

    def stop_after_two(progress: int) -> None:
        if progress == 1:
            cancel.set()

    end = run_to_end(relay(counter.steps(), cancel), stop_after_two)
    assert end == RunEnd(cancelled=True)
    assert not end.completed and end.result is None
    assert counter.ran == [0, 1]  # step 2 never started
    assert counter.closed


def test_a_flag_set_before_the_start_runs_no_step() -> None:
    counter = _Counter(3)
    cancel = threading.Event()
    cancel.set()
    assert run_to_end(relay(counter.steps(), cancel)).cancelled
    assert counter.ran == []


def test_listed_errors_end_the_run_others_propagate() -> None:
    counter = _Counter(5, fail_at=2)
    seen: list[int] = []
    end = run_to_end(relay(counter.steps(), errors=(ValueError,)), seen.append)
    assert isinstance(end.error, ValueError) and str(end.error) == "step 2 failed"
    assert not end.completed and end.result is None and seen == [0, 1]
    with pytest.raises(ValueError, match="step 2 failed"):
        run_to_end(relay(_Counter(5, fail_at=2).steps(), errors=(KeyError,)))


def test_show_converts_progress_and_none_skips_it() -> None:
    counter = _Counter(4)
    seen: list[str] = []
    end = run_to_end(
        relay(counter.steps(), show=lambda i: f"step {i}" if i % 2 == 0 else None), seen.append
    )
    assert seen == ["step 0", "step 2"]
    assert end.result == "done 4"


def test_closing_the_relay_closes_the_generator() -> None:
    counter = _Counter(5)
    outer = relay(counter.steps())
    assert next(outer) == 0
    outer.close()
    assert counter.closed and counter.ran == [0]
