"""Study discovery: the studies under a root folder, found from headers only (no pixel data is read).

Rules:

1. DICOM files are grouped by StudyInstanceUID, wherever they lie under the root: a study may span
   several folders and a folder may hold several studies. Files without a StudyInstanceUID are grouped
   by their folder. DICOMDIR files are skipped.
2. ``.npy`` volumes in a plane folder (``axial``, ``coronal``, ``sagittal``) are grouped by case id (the
   file name) and the folder above the plane folders, so an MRNet root gives one study per split and
   case with its three planes. Any other ``.npy`` file is a study of its own.
3. A file whose header cannot be read, and a folder that cannot be listed, is a problem with its reason,
   never an error.
4. Studies are ordered by their display name, then their id, so the order is the same on every run.

A study's id is stable across runs and holds no patient data: ``dicom-`` plus 16 hex digits of the
SHA-256 of its StudyInstanceUID, or ``npy-<folder>/<case>`` for ``.npy`` volumes (root-relative).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from napari_elnet.common.errors import NoUsableSeriesError
from napari_elnet.common.series import PLANES
from napari_elnet.io.files import FileKind, file_kind, list_files
from napari_elnet.io.scan import FileProblem

StudyKind = Literal["dicom", "npy"]
_HASH_DIGITS = 16
_SHORT_HASH_DIGITS = 10
_HEADER_KEYWORDS = (
    "SOPClassUID", "StudyInstanceUID", "AccessionNumber", "StudyDate", "StudyDescription",
    "PatientID", "PatientName",
)  # fmt: skip


@dataclass(frozen=True)
class PatientInfo:
    """Protected health information of a study, kept apart from everything else.

    Only reports written with ``include_phi`` show these fields.
    """

    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""


@dataclass(frozen=True)
class StudyRef:
    """One study found under a root: what to load, how to name it, and its PHI kept separately.

    Attributes:
        study_id: Stable id without patient data (see the module docstring); the key for resuming.
        name: Display name: the accession number, else ``uid-`` plus a short hash of the UID, else the
            ``.npy`` case (``split/case``).
        kind: ``dicom`` or ``npy``.
        files: The study's files, sorted (for ``npy``: one volume per plane).
        study_uid: StudyInstanceUID ("" for ``npy`` studies and DICOM files without one).
        accession_number: AccessionNumber, or "".
        description: StudyDescription, or "".
        folders: Root-relative folders holding the files (may name the patient: shown only with PHI).
        phi: Patient name, ID and study date.
    """

    study_id: str
    name: str
    kind: StudyKind
    files: tuple[Path, ...]
    study_uid: str = ""
    accession_number: str = ""
    description: str = ""
    folders: tuple[str, ...] = ()
    phi: PatientInfo = field(default_factory=PatientInfo)


@dataclass(frozen=True)
class Discovery:
    """Everything found under a root folder.

    Attributes:
        root: The folder searched (resolved).
        studies: The studies, in a deterministic order (display name, then id).
        problems: Files and folders that could not be read, with the reason, in path order.
    """

    root: Path
    studies: tuple[StudyRef, ...]
    problems: tuple[FileProblem, ...]


@dataclass
class _DicomGroup:
    """Files of one StudyInstanceUID (or one folder, without a UID) and their first header values."""

    key: str
    study_uid: str
    files: list[Path] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)


def uid_hash(text: str, digits: int = _HASH_DIGITS) -> str:
    """Hex digits of the SHA-256 of ``text`` (used instead of UIDs wherever PHI must not appear)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]


def discover_studies(root: str | os.PathLike[str]) -> Discovery:
    """Find the studies under a folder from file names and headers only.

    Args:
        root: A folder.

    Returns:
        The studies and the problems (see the module docstring for the rules).

    Raises:
        NoUsableSeriesError: ``root`` is not an existing folder.
    """
    folder = Path(root).resolve()
    if not folder.is_dir():
        raise NoUsableSeriesError(f"{folder}: not a folder (triage needs a folder of studies)")
    files, unlisted = list_files(folder)
    problems = [FileProblem(path, reason) for path, reason in unlisted]
    dicom: dict[str, _DicomGroup] = {}
    volumes: dict[tuple[Path, str], list[Path]] = {}
    for path in files:
        kind = file_kind(path)
        if kind is FileKind.DICOM:
            problem = _add_dicom(dicom, path)
            if problem is not None:
                problems.append(problem)
        elif kind is FileKind.NPY:
            volumes.setdefault(_volume_key(path), []).append(path)
    studies = [_dicom_ref(group, folder) for group in dicom.values()]
    studies.extend(_npy_ref(key, paths, folder) for key, paths in volumes.items())
    studies.sort(key=lambda s: (s.name, s.study_id))
    problems.sort(key=lambda p: str(p.path))
    return Discovery(folder, tuple(studies), tuple(problems))


def read_study_header(path: Path) -> dict[str, str] | FileProblem | None:
    """The study-level header fields of one DICOM file, without its pixel data.

    Returns:
        Keyword -> text for the fields in ``_HEADER_KEYWORDS`` that are present; None for a DICOMDIR;
        a FileProblem naming the reason when the header cannot be read.
    """
    from napari_elnet.io import dicom_values
    from napari_elnet.io.dicom_headers import read_dicom_header

    try:  # bounded: regular files only, deflated data inflated only as far as its header declares
        ds = read_dicom_header(path, _HEADER_KEYWORDS)
    except Exception as error:  # pydicom raises many types for damaged files
        return FileProblem(path, f"DICOM header cannot be read: {type(error).__name__}: {error}")
    meta = getattr(ds, "file_meta", None)
    sop_class = dicom_values.text(meta, "MediaStorageSOPClassUID") if meta is not None else ""
    if sop_class == "1.2.840.10008.1.3.10":  # Media Storage Directory (DICOMDIR)
        return None
    values = {  # through the guarded reader: a damaged value is absent, never an exception
        keyword: dicom_values.text(ds, keyword).strip() for keyword in _HEADER_KEYWORDS
    }
    values = {keyword: value for keyword, value in values.items() if value}
    if not values.get("StudyInstanceUID") and not values.get("SOPClassUID"):
        return FileProblem(
            path, "not a DICOM image header: neither StudyInstanceUID nor SOPClassUID found"
        )
    return values


def _add_dicom(groups: dict[str, _DicomGroup], path: Path) -> FileProblem | None:
    """Put one DICOM file into its study group; the problem when its header cannot be read."""
    header = read_study_header(path)
    if header is None or isinstance(header, FileProblem):
        return header
    uid = header.get("StudyInstanceUID", "")
    key = f"uid:{uid}" if uid else f"folder:{path.parent}"
    group = groups.setdefault(key, _DicomGroup(key, uid))
    group.files.append(path)
    for keyword, value in header.items():
        if value and not group.values.get(keyword):
            group.values[keyword] = value
    return None


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form ("." for the root itself)."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.as_posix()


def _folders(files: Iterable[Path], root: Path) -> tuple[str, ...]:
    """Sorted distinct root-relative parent folders."""
    return tuple(sorted({_relative(f.parent, root) for f in files}))


def _dicom_ref(group: _DicomGroup, root: Path) -> StudyRef:
    """The StudyRef of one DICOM group."""
    files = tuple(sorted(group.files))
    if group.study_uid:
        digest = uid_hash(group.study_uid)
    else:
        digest = uid_hash("folder:" + _relative(files[0].parent, root))
    accession = group.values.get("AccessionNumber", "")
    return StudyRef(
        study_id=f"dicom-{digest}",
        name=accession or f"uid-{digest[:_SHORT_HASH_DIGITS]}",
        kind="dicom",
        files=files,
        study_uid=group.study_uid,
        accession_number=accession,
        description=group.values.get("StudyDescription", ""),
        folders=_folders(files, root),
        phi=PatientInfo(
            patient_id=group.values.get("PatientID", ""),
            patient_name=group.values.get("PatientName", ""),
            study_date=group.values.get("StudyDate", ""),
        ),
    )


def _volume_key(path: Path) -> tuple[Path, str]:
    """(case folder, case id): plane folders group by the folder above them, other files stand alone."""
    if path.parent.name.lower() in PLANES:
        return path.parent.parent, path.stem
    return path.parent, path.name


def _npy_ref(key: tuple[Path, str], paths: list[Path], root: Path) -> StudyRef:
    """The StudyRef of one ``.npy`` case."""
    folder, case = key
    relative = _relative(folder, root)
    name = case if relative == "." else f"{relative}/{case}"
    files = tuple(sorted(paths, key=lambda p: (p.parent.name.lower(), p.name)))
    return StudyRef(
        study_id=f"npy-{name}",
        name=name,
        kind="npy",
        files=files,
        folders=_folders(files, root),
    )
