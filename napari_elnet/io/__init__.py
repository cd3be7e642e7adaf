"""Headless study loading: DICOM folders and files (any transfer syntax pydicom can decode) and MRNet .npy.

Public API: :func:`read_study` (never raises for bad files), :func:`load_study` (warns per bad file and
raises :class:`~napari_elnet.errors.NoUsableSeriesError` when nothing loads), :func:`is_study_path` (a
cheap check for a napari reader's ``get_reader``), and the result types :class:`StudyScan` and
:class:`FileProblem`.
"""

from __future__ import annotations

from napari_elnet.io.files import is_study_path
from napari_elnet.io.scan import FileProblem, StudyScan
from napari_elnet.io.study import load_study, read_study

__all__ = ["FileProblem", "StudyScan", "is_study_path", "load_study", "read_study"]
