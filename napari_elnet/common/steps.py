"""Running the core's progress generators (training, triage, evaluation, worklist) to the end."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")


def run_to_end(steps: Generator[P, None, R], callback: Callable[[P], None] | None = None) -> R:
    """Exhaust a progress generator, passing each progress to ``callback``, and return its result."""
    while True:
        try:
            progress = next(steps)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(progress)
