"""Domain exceptions and warnings of napari-elnet, in one place."""

from __future__ import annotations


class ElnetError(Exception):
    """Base class of every error napari-elnet raises on purpose."""


class NoUsableSeriesError(ElnetError):
    """A path holds no image series that could be loaded."""


class ModelFileError(ElnetError):
    """A model file is missing, corrupt, of another format, or of an unknown version."""


class ConfigurationError(ElnetError, ValueError):
    """An argument or configuration value is out of its allowed range."""


class ElnetWarning(UserWarning):
    """A soft problem worth telling the user about (e.g. a file skipped while loading)."""


def one_line(error: BaseException) -> str:
    """``<exception type>: <first line of its message>``: how a failure that does not stop the
    run is reported beside its results (DICOM node, ``triage --dicom-out``)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
