"""Durations as a clock for status lines and progress bars."""

from __future__ import annotations

import math

UNKNOWN = "--:--"
"""What :func:`clock` shows for an unknown duration."""


def clock(seconds: float | None) -> str:
    """``m:ss`` for ``seconds`` (``h:mm:ss`` past an hour), rounded to whole seconds.

    :data:`UNKNOWN` for ``None``, NaN, infinite or negative durations (e.g. no ETA yet).
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return UNKNOWN
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
