"""What reading a study path produced: the series that loaded and the files that did not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_elnet.common.errors import NoUsableSeriesError
from napari_elnet.common.series import Series

MAX_PROBLEMS_IN_MESSAGE = 3


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
        skipped: DICOM files read and passed over as holding no image series (structured reports,
            parametric maps, colour secondary captures, DICOMDIRs and other non-image objects).
    """

    series: tuple[Series, ...]
    problems: tuple[FileProblem, ...]
    skipped: int = 0

    def nothing_read(self, nothing_found: str) -> str:
        """Why neither a series nor a problem came out: ``nothing_found`` (no image files), or the
        DICOM files passed over as holding no image series ("no files found" would be wrong)."""
        if not self.skipped:
            return nothing_found
        return (
            f"no image series; {self.skipped} DICOM file(s) hold none (structured reports, "
            "parametric maps, colour secondary captures and other objects without a greyscale "
            "image are passed over)"
        )

    def require_series(self, label: str, nothing_found: str) -> list[Series]:
        """The series, or NoUsableSeriesError naming ``label`` and the first problems.

        Args:
            label: How the message names what was read (a path, or a study's display name).
            nothing_found: The reason given when there were neither series nor problems.
        """
        if self.series:
            return list(self.series)
        if not self.problems:
            raise NoUsableSeriesError(f"{label}: {self.nothing_read(nothing_found)}")
        shown = "; ".join(
            f"{p.path.name}: {p.reason}" for p in self.problems[:MAX_PROBLEMS_IN_MESSAGE]
        )
        more = len(self.problems) - MAX_PROBLEMS_IN_MESSAGE
        suffix = f" (and {more} more)" if more > 0 else ""
        raise NoUsableSeriesError(
            f"{label}: no usable image series; {len(self.problems)} file(s) could not be "
            f"loaded: {shown}{suffix}"
        )


def display_order(series: Series) -> tuple[bool, int, str, str, str]:
    """Sort key of series in a study: SeriesNumber (missing last), description, UID, first file."""
    first = str(series.files[0]) if series.files else ""
    return (series.number is None, series.number or 0, series.description, series.uid, first)
