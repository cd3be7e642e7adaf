"""JSON output that is always valid JSON: NaN and infinities become ``null``, never ``NaN``."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def json_safe(value: object) -> object:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None (JSON ``null``), NumPy
    scalars as Python numbers and tuples as lists."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def dumps_json(data: object, **options: Any) -> str:
    """``json.dumps`` of :func:`json_safe` data with ``allow_nan=False`` (NaN can never slip through)."""
    return json.dumps(json_safe(data), allow_nan=False, **options)
