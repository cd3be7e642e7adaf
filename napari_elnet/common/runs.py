"""Cancellable runs: relay a core progress generator, stop between two steps when asked.

The core's long computations (training, triage, worklist) are generators that yield progress and
return a result. :func:`relay` runs one inside another generator (``yield from``), checks a cancel
flag before every step, closes the inner generator when it stops and says how the run ended: with
its result, cancelled, or with an error. The napari widgets run these relays in thread workers and
the command line runs them to the end (:func:`napari_elnet.common.steps.run_to_end`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

P = TypeVar("P")
Q = TypeVar("Q")
R = TypeVar("R")


@dataclass(frozen=True)
class RunEnd(Generic[R]):
    """How a relayed run ended.

    Attributes:
        result: What the generator returned (None when it was cancelled or failed).
        cancelled: The cancel flag stopped it before its end.
        error: The exception (one of the ``errors`` given to :func:`relay`) that ended it.
    """

    result: R | None = None
    cancelled: bool = False
    error: Exception | None = None

    @property
    def completed(self) -> bool:
        """The generator ran to its end (``result`` is what it returned)."""
        return not self.cancelled and self.error is None


@overload
def relay(
    steps: Generator[P, None, R],
    cancel: threading.Event | None = None,
    *,
    show: None = None,
    errors: tuple[type[Exception], ...] = (),
) -> Generator[P, None, RunEnd[R]]: ...


@overload
def relay(
    steps: Generator[P, None, R],
    cancel: threading.Event | None = None,
    *,
    show: Callable[[P], Q | None],
    errors: tuple[type[Exception], ...] = (),
) -> Generator[Q, None, RunEnd[R]]: ...


def relay(
    steps: Generator[Any, None, R],
    cancel: threading.Event | None = None,
    *,
    show: Callable[[Any], Any] | None = None,
    errors: tuple[type[Exception], ...] = (),
) -> Generator[Any, None, RunEnd[R]]:
    """Yield the progress of ``steps`` until it returns, fails or ``cancel`` is set.

    The flag is checked before every step, so a cancelled run stops at its next step (the step in
    progress finishes first); ``steps`` is closed whenever the relay ends, so its ``finally``
    clauses run (loader threads stop, hooks are removed).

    Args:
        steps: The progress generator (created but not started, or part-way through).
        cancel: Set (from any thread) to stop; None to run to the end.
        show: Turns each progress into what is yielded instead; a None from it yields nothing.
        errors: Exception types that end the run with :attr:`RunEnd.error` instead of propagating.

    Returns:
        The result, or that the run was cancelled, or the error that ended it.
    """
    try:
        while True:
            if cancel is not None and cancel.is_set():
                return RunEnd(cancelled=True)
            try:
                progress = next(steps)
            except StopIteration as stop:
                return RunEnd(result=stop.value)
            except errors as exc:
                return RunEnd(error=exc)
            shown = progress if show is None else show(progress)
            if shown is not None:
                yield shown
    finally:
        steps.close()
