"""Finding the candidate image files under a path and telling DICOM from .npy from everything else."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

#: File name suffixes (lower case) taken as DICOM without looking inside.
DICOM_SUFFIXES: frozenset[str] = frozenset({".dcm", ".dicom", ".ima"})
#: File name of a DICOM media directory (an index, never an image).
DICOMDIR_NAME = "DICOMDIR"
_PREAMBLE_LENGTH = 128
_MAGIC = b"DICM"


class FileKind(Enum):
    """What a file is, for the loader."""

    DICOM = "dicom"
    NPY = "npy"
    DICOMDIR = "dicomdir"
    OTHER = "other"


def has_dicom_preamble(path: Path) -> bool:
    """True when the file starts with the 128-byte DICOM preamble and ``DICM``; False on any OSError."""
    try:
        with path.open("rb") as f:
            head = f.read(_PREAMBLE_LENGTH + len(_MAGIC))
    except OSError:
        return False
    return head[_PREAMBLE_LENGTH:] == _MAGIC


def file_kind(path: Path) -> FileKind:
    """Classify one file by its name and, when the name says nothing, by its first 132 bytes."""
    if path.name.upper() == DICOMDIR_NAME:
        return FileKind.DICOMDIR
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return FileKind.NPY
    if suffix in DICOM_SUFFIXES or has_dicom_preamble(path):
        return FileKind.DICOM
    return FileKind.OTHER


def list_files(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """All regular files under ``root`` (recursive, sorted, hidden files and folders skipped).

    Args:
        root: A folder.

    Returns:
        The files, and (path, reason) for every folder that could not be listed.
    """
    files: list[Path] = []
    unreadable: list[tuple[Path, str]] = []

    def on_error(error: OSError) -> None:
        unreadable.append(
            (Path(error.filename or root), f"folder cannot be listed: {error.strerror}")
        )

    for folder, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(folder) / name for name in sorted(filenames) if not name.startswith("."))
    return files, unreadable


def is_study_path(path: str | os.PathLike[str]) -> bool:
    """True for a folder, a ``*.dcm``/``*.npy`` file or a file with the DICOM preamble; never raises.

    Args:
        path: Candidate path, e.g. what napari passes to a reader's ``get_reader``.

    Returns:
        Whether :func:`napari_elnet.io.read_study` should be tried on it.
    """
    try:
        p = Path(path)
        if p.is_dir():
            return True
        if not p.is_file():
            return False
        return p.suffix.lower() in {".dcm", ".npy"} or has_dicom_preamble(p)
    except (OSError, TypeError, ValueError):
        return False
