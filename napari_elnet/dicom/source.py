"""The DICOM instances behind a Series: headers, SOP instance UIDs, frame numbers and positions per slice.

A :class:`~napari_elnet.common.series.Series` keeps the file of each slice (``files[i]``); the result
objects need more (the study and patient modules to copy, the SOP instance of each slice, its position),
so the headers are read again here, without pixel data.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.valuerep import DA, TM

from napari_elnet.common.errors import ConfigurationError, ElnetWarning
from napari_elnet.common.series import Series


@dataclass(frozen=True)
class SliceReference:
    """Where one slice of a series comes from.

    Attributes:
        sop_class_uid: SOPClassUID of the source instance.
        sop_instance_uid: SOPInstanceUID of the source instance.
        frame_number: 1-based frame of a multi-frame instance, None for a single-frame one.
        position: ImagePositionPatient of the slice (mm, LPS), or None without geometry.
    """

    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int | None
    position: tuple[float, float, float] | None


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """A series together with its DICOM headers.

    Attributes:
        series: The loaded series (pixel data, geometry).
        datasets: One header per source file (no pixel data), in slice order, each file once.
        slices: One reference per slice of ``series``.
    """

    series: Series
    datasets: tuple[Dataset, ...]
    slices: tuple[SliceReference, ...]

    @property
    def first(self) -> Dataset:
        """Header of the first slice's file (study and patient modules are copied from it)."""
        return self.datasets[0]

    def dataset_of(self, index: int) -> Dataset:
        """Header of the file holding slice ``index``."""
        uid = self.slices[index].sop_instance_uid
        return next(ds for ds in self.datasets if ds.SOPInstanceUID == uid)


def require_dicom(series: Series) -> None:
    """Raise ConfigurationError unless every slice of ``series`` comes from a DICOM file."""
    if not series.files:
        raise ConfigurationError(
            f"series {series.name} has no source files: DICOM results need DICOM input "
            "(write JSON/CSV results instead)"
        )
    npy = [f for f in series.files if Path(f).suffix.lower() == ".npy"]
    if npy:
        raise ConfigurationError(
            f"{npy[0]}: MRNet .npy input has no DICOM source (no patient, study or instance UIDs), "
            "so no DICOM results can refer to it; write JSON/CSV results instead"
        )


def read_source(series: Series) -> SourceSeries:
    """Read the headers of the files behind ``series`` (without pixel data).

    Raises:
        ConfigurationError: The series is not from DICOM files, or a file no longer reads as DICOM
            with a SOP instance UID.
    """
    require_dicom(series)
    headers: dict[Path, Dataset] = {}
    unknown: dict[str, Path] = {}  # a date or time no DICOM value, and its first file
    for file in series.files:
        path = Path(file)
        if path in headers:
            continue
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except Exception as error:  # pydicom raises many types for damaged files
            raise ConfigurationError(f"{path}: cannot re-read the DICOM header: {error}") from error
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise ConfigurationError(f"{path}: no SOPInstanceUID/SOPClassUID")
        for problem in _make_dates_conformant(_with_empty_type2(ds)):
            unknown.setdefault(problem, path)
        headers[path] = ds
    for problem, path in unknown.items():
        warnings.warn(
            f"{path}: {problem}: left empty (unknown) in the DICOM results",
            ElnetWarning,
            stacklevel=2,
        )
    frames = _frame_numbers(series, headers)
    slices = tuple(
        _reference(headers[Path(file)], frames[index], series, index)
        for index, file in enumerate(series.files)
    )
    return SourceSeries(series=series, datasets=tuple(headers.values()), slices=slices)


TYPE2_PATIENT_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip
"""Type 2 elements of the Patient and General Study modules (present, possibly empty, in every object)."""


def _with_empty_type2(ds: Dataset) -> Dataset:
    """The header with absent Type 2 patient/study elements added empty ("unknown"), never invented.

    highdicom copies these modules from the source and needs every element present; an empty value
    is what the standard prescribes for an unknown Type 2 value.
    """
    for keyword in TYPE2_PATIENT_STUDY:
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


DATES_AND_TIMES: dict[str, type[DA] | type[TM]] = {
    "StudyDate": DA,
    "PatientBirthDate": DA,
    "StudyTime": TM,
}
"""The dates and times of the copied modules, which highdicom parses (DA, TM)."""
_ACR_NEMA_DATE = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_ACR_NEMA_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$")


def conformant_value(value: str, kind: type[DA] | type[TM]) -> str | None:
    """``value`` in the format of DICOM 3 (``YYYYMMDD``, ``HHMMSS.FFFFFF``), or None if it is none.

    Dates ``YYYY.MM.DD`` and times ``HH:MM:SS`` (the ACR-NEMA formats PS3.5 asks readers to still
    accept, found in real scanner files) are rewritten without their separators: the same value.
    """
    text = value.strip()
    legacy = (_ACR_NEMA_DATE if kind is DA else _ACR_NEMA_TIME).match(text)
    if legacy:
        text = "".join(part or "" for part in legacy.groups())
    try:
        kind(text)
    except ValueError:
        return None
    return text


def _make_dates_conformant(ds: Dataset) -> list[str]:
    """Put the header's study and birth dates and study time in DICOM 3 format, in place.

    highdicom refuses any other (a real file's StudyTime ``09:11:56`` made every DICOM result of its
    study fail). A value that is no date or time at all is emptied (unknown, never invented).

    Returns:
        One line per emptied value (``StudyTime 'noon' is not a DICOM TM value``).
    """
    problems = []
    for keyword, kind in DATES_AND_TIMES.items():
        value = str(ds.get(keyword) or "")
        if not value.strip():
            continue
        fixed = conformant_value(value, kind)
        if fixed is None:
            problems.append(f"{keyword} {value[:40]!r} is not a DICOM {kind.__name__} value")
        setattr(ds, keyword, fixed)
    return problems


def _frame_numbers(series: Series, headers: dict[Path, Dataset]) -> list[int | None]:
    """1-based frame of each slice in its file (None for single-frame files).

    The slices of one multi-frame file are in order along the slice normal, so they take that file's
    frames sorted by their position along the normal (frame order when the frames have no position).
    """
    slices_of: dict[Path, list[int]] = defaultdict(list)
    for index, file in enumerate(series.files):
        slices_of[Path(file)].append(index)
    numbers: list[int | None] = [None] * len(series.files)
    for path, indices in slices_of.items():
        ds = headers[path]
        if "NumberOfFrames" not in ds:
            continue
        frame_order = _frames_along_normal(ds, series.orientation)
        for index, frame in zip(indices, frame_order, strict=False):
            numbers[index] = frame
    return numbers


def _frames_along_normal(ds: Dataset, orientation: np.ndarray | None) -> list[int]:
    """Frame numbers of a multi-frame header sorted by position along the slice normal."""
    count = int(ds.get("NumberOfFrames", 1) or 1)
    positions = [_frame_position(ds, n) for n in range(1, count + 1)]
    if orientation is None or any(p is None for p in positions):
        return list(range(1, count + 1))
    normal = orientation[2]
    return sorted(
        range(1, count + 1),
        key=lambda n: float(np.dot(positions[n - 1], normal)),  # type: ignore[arg-type]
    )


def _frame_position(ds: Dataset, frame_number: int) -> tuple[float, float, float] | None:
    """ImagePositionPatient of one frame (per-frame group, else shared group), or None."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    groups = [
        per_frame[frame_number - 1] if per_frame and frame_number <= len(per_frame) else None,
        shared[0] if shared else None,
    ]
    for group in groups:
        plane = group.get("PlanePositionSequence") if group is not None else None
        if plane and "ImagePositionPatient" in plane[0]:
            return _triple(plane[0].ImagePositionPatient)
    return None


def _triple(values: object) -> tuple[float, float, float] | None:
    """Three floats from a DICOM multi-value, or None."""
    try:
        numbers = tuple(float(v) for v in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == 3 else None


def _reference(ds: Dataset, frame_number: int | None, series: Series, index: int) -> SliceReference:
    """The reference of slice ``index``: UIDs from its header, position from the header or geometry."""
    if frame_number is not None:
        position = _frame_position(ds, frame_number)
    else:
        position = _triple(ds.get("ImagePositionPatient"))
    if position is None and series.origin is not None and series.orientation is not None:
        normal = series.orientation[2]
        point = np.asarray(series.origin) + index * series.spacing[0] * normal
        position = (float(point[0]), float(point[1]), float(point[2]))
    return SliceReference(
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        frame_number=frame_number,
        position=position,
    )


def copy_laterality(source: SourceSeries, target: Dataset) -> None:
    """Copy the source's (series) Laterality into ``target``; empty (unknown) when the source has none.

    Laterality is Type 2C in the General Series module: required for a paired body part (a knee).
    The source's value is kept when it has one; otherwise it stays unknown rather than guessed.
    """
    value = source.first.get("Laterality", None) or source.first.get("ImageLaterality", None)
    target.Laterality = value if value in ("L", "R") else None
