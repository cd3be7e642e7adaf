"""What every command shares: exit codes, the study loader, aligned tables and JSON output."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from napari_elnet.common.series import Series

EXIT_OK = 0
EXIT_FAILED = 1  # a file could not be read or written during the run
EXIT_UNUSABLE = 2  # unusable input or output argument, refused before any work is done


def write_json(data: Any, target: str | None, inputs: Sequence[str]) -> None:
    """Write ``data`` as JSON to the file ``target``, or to stdout for ``-``; nothing for ``None``.

    ``inputs`` are the command's input paths: the file is refused inside them.
    """
    if target is None:
        return
    from napari_elnet.common.json_output import dumps_json

    text = dumps_json(data, indent=2, default=str)  # NaN/inf become null: always valid JSON
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    from napari_elnet.common.outputs import ensure_outside_inputs

    path = ensure_outside_inputs(target, inputs, folder=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def load_series(path: str, err: TextIO) -> list[Series]:
    """:func:`napari_elnet.io.load_study`, its warnings (one per unreadable file) written to ``err``.

    Raises:
        NoUsableSeriesError: nothing loads (the message names the path and the first reasons).
    """
    from napari_elnet.io import load_study

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = load_study(path)  # when it raises, its one-line message names the problems
    for warning in caught:
        err.write(f"warning: {warning.message}\n")
    return series


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Plain aligned text table."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def number(value: float) -> str:
    """Three decimals, ``nan`` for undefined values."""
    return "nan" if math.isnan(value) else f"{value:.3f}"


def json_number(value: float) -> float | None:
    """JSON has no NaN: undefined metrics become null."""
    return None if isinstance(value, float) and math.isnan(value) else value
