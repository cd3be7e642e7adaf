"""What reading a study path produced: the series that loaded and the files that did not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_elnet.series import Series


@dataclass(frozen=True)
class FileProblem:
    """A file that looked like an image file but could not be loaded.

    Attributes:
        path: The file.
        reason: Why it was not loaded, in words a user can act on.
    """

    path: Path
    reason: str


@dataclass(frozen=True)
class StudyScan:
    """Result of reading a file or folder.

    Attributes:
        series: The loaded series, in display order (SeriesNumber, then description, then UID).
        problems: One entry per image file that could not be loaded, in path order.
    """

    series: tuple[Series, ...]
    problems: tuple[FileProblem, ...]
