"""Loading the pixels of one discovered study with the io readers (one read per file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari_elnet.common.series import Series
from napari_elnet.io.files import FileKind
from napari_elnet.io.scan import StudyScan
from napari_elnet.io.study import read_files
from napari_elnet.worklist.discovery import StudyRef

FileReader = Callable[[tuple[Path, ...], FileKind], StudyScan]
"""Reads a study's files of one kind (:func:`napari_elnet.io.study.read_files`, or the same in a
worker process: :class:`napari_elnet.io.parallel.LoaderProcess`)."""


def read_study_ref(ref: StudyRef, read: FileReader = read_files) -> StudyScan:
    """Read every file of a study into series (:func:`napari_elnet.io.study.read_files`).

    Args:
        ref: A study from :func:`~napari_elnet.worklist.discover_studies`.
        read: What reads the files (default: in this process).

    Returns:
        The series in display order and one FileProblem per file that could not be loaded.
    """
    return read(ref.files, FileKind.NPY if ref.kind == "npy" else FileKind.DICOM)


def load_study_scan(ref: StudyRef, read: FileReader = read_files) -> StudyScan:
    """The series of a study and its files that could not be loaded, insisting on one series.

    The worklist's loader: it keeps the per-file problems, which become the study's warnings.

    Raises:
        NoUsableSeriesError: No file of the study gave a series; the message names the study (by its
            display name, never by patient data) and the first reasons.
    """
    scan = read_study_ref(ref, read)
    scan.require_series(f"study {ref.name}", "no image series (no file holds pixel data)")
    return scan


def load_study_ref(ref: StudyRef, read: FileReader = read_files) -> list[Series]:
    """The series of a study, insisting on at least one (its file problems are dropped: use
    :func:`load_study_scan` to keep them).

    Raises:
        NoUsableSeriesError: As :func:`load_study_scan`.
    """
    return list(load_study_scan(ref, read).series)


def problem_warnings(scan: StudyScan) -> tuple[str, ...]:
    """One warning per file of a study that could not be loaded: ``<file name>: <reason>`` (the
    file's name only: its folders may name the patient)."""
    return tuple(f"{p.path.name}: {p.reason}" for p in scan.problems)
