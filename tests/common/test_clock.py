"""The one clock format of status lines: m:ss, h:mm:ss past an hour, --:-- when unknown."""

from __future__ import annotations

import math

import pytest

from napari_elnet.common.clock import UNKNOWN, clock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (59.4, "0:59"),
        (59.6, "1:00"),
        (65, "1:05"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (36125, "10:02:05"),
    ],
)
def test_clock(seconds: float, text: str) -> None:
    assert clock(seconds) == text


@pytest.mark.parametrize("seconds", [None, math.nan, math.inf, -1.0])
def test_unknown_durations(seconds: float | None) -> None:
    assert clock(seconds) == UNKNOWN == "--:--"
