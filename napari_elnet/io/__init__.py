"""Headless study loading: DICOM folders and files (any transfer syntax pydicom can decode) and MRNet .npy.

Public API: :func:`read_study` (never raises for bad files), :func:`load_study` (warns per bad file and
raises :class:`~napari_elnet.common.errors.NoUsableSeriesError` when nothing loads), :func:`is_study_path` (a
cheap check for a napari reader's ``get_reader``), and the result types :class:`StudyScan` and
:class:`FileProblem`.

The loaders (and pydicom) are imported on first use, so that ``is_study_path`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_elnet.io.files import is_study_path

if TYPE_CHECKING:
    from napari_elnet.io.scan import FileProblem, StudyScan
    from napari_elnet.io.study import load_study, read_study

__all__ = ["FileProblem", "StudyScan", "is_study_path", "load_study", "read_study"]

_LAZY = {
    "FileProblem": "napari_elnet.io.scan",
    "StudyScan": "napari_elnet.io.scan",
    "load_study": "napari_elnet.io.study",
    "read_study": "napari_elnet.io.study",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
