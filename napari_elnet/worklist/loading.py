"""Loading the pixels of one discovered study with the io readers (one read per file)."""

from __future__ import annotations

from napari_elnet.common.series import Series
from napari_elnet.io.dicom_headers import DicomImage, read_dicom_file
from napari_elnet.io.dicom_series import build_series
from napari_elnet.io.mrnet import read_npy_volume
from napari_elnet.io.scan import FileProblem, StudyScan, display_order
from napari_elnet.worklist.discovery import StudyRef


def read_study_ref(ref: StudyRef) -> StudyScan:
    """Read every file of a study into series (same rules as :func:`napari_elnet.io.read_study`).

    Args:
        ref: A study from :func:`~napari_elnet.worklist.discover_studies`.

    Returns:
        The series in display order and one FileProblem per file that could not be loaded.
    """
    problems: list[FileProblem] = []
    series: list[Series] = []
    images: list[DicomImage] = []
    for path in ref.files:
        if ref.kind == "npy":
            volume = read_npy_volume(path)
            (series if isinstance(volume, Series) else problems).append(volume)  # type: ignore[arg-type]
            continue
        result = read_dicom_file(path)
        if isinstance(result, DicomImage):
            images.append(result)
        elif isinstance(result, FileProblem):
            problems.append(result)
    series.extend(build_series(images))
    series.sort(key=display_order)
    return StudyScan(series=tuple(series), problems=tuple(problems))


def load_study_ref(ref: StudyRef) -> list[Series]:
    """The series of a study, insisting on at least one.

    Raises:
        NoUsableSeriesError: No file of the study gave a series; the message names the study (by its
            display name, never by patient data) and the first reasons.
    """
    return read_study_ref(ref).require_series(
        f"study {ref.name}", "no image series (no file holds pixel data)"
    )
