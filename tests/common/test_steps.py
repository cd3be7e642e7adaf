"""Running progress generators to the end."""

from __future__ import annotations

from collections.abc import Generator

from napari_elnet.common.steps import run_to_end


def _count(n: int) -> Generator[int, None, str]:
    yield from range(n)
    return f"done {n}"


def test_returns_the_generator_result_and_reports_every_progress() -> None:
    seen: list[int] = []
    assert run_to_end(_count(3), seen.append) == "done 3"
    assert seen == [0, 1, 2]


def test_without_callback() -> None:
    assert run_to_end(_count(0)) == "done 0"
