"""Reading a file or folder into series and problems; the user-facing wrapper that warns and raises."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from napari_elnet.common.errors import ElnetWarning, NoUsableSeriesError
from napari_elnet.common.series import Series
from napari_elnet.io.dicom_headers import DicomImage, read_dicom_file
from napari_elnet.io.dicom_series import build_series
from napari_elnet.io.files import DICOMDIR_NAME, FileKind, file_kind, list_files
from napari_elnet.io.mrnet import read_npy_volume
from napari_elnet.io.scan import FileProblem, StudyScan, display_order


def read_study(path: str | os.PathLike[str]) -> StudyScan:
    """Read every DICOM and MRNet ``.npy`` image under a path.

    A folder is searched recursively; files that are neither DICOM nor ``.npy`` are ignored, DICOMDIR
    files and DICOM objects without pixel data are skipped silently. A DICOMDIR path reads its folder.

    Args:
        path: A folder, a DICOM file, a ``.npy`` file or a DICOMDIR.

    Returns:
        The series in display order and one FileProblem per file that could not be loaded. A series'
        ``files[i]`` is the file holding slice i (a multi-frame file appears once per frame).

    Raises:
        NoUsableSeriesError: The path is empty or does not exist (nothing else raises).
    """
    if not str(path).strip():
        raise NoUsableSeriesError("no path given (an empty path is not the current folder)")
    root = Path(path)
    if not root.exists():
        raise NoUsableSeriesError(f"{root}: no such file or directory")
    if root.is_file() and root.name.upper() == DICOMDIR_NAME:
        root = root.parent
    problems: list[FileProblem] = []
    if not root.is_dir() and not root.is_file():  # a FIFO, a device or a socket: never opened
        return StudyScan(series=(), problems=(FileProblem(root, "not a regular file or folder"),))
    if root.is_dir():
        files, unlisted = list_files(root)
        problems.extend(FileProblem(p, reason) for p, reason in unlisted)
    else:
        files = [root]
    images: list[DicomImage] = []
    series: list[Series] = []
    for file in files:
        kind = file_kind(file)
        if kind is FileKind.DICOM:
            result = read_dicom_file(file)
            if isinstance(result, DicomImage):
                images.append(result)
            elif isinstance(result, FileProblem):
                problems.append(result)
        elif kind is FileKind.NPY:
            volume = read_npy_volume(file)
            (series if isinstance(volume, Series) else problems).append(volume)  # type: ignore[arg-type]
        elif kind is FileKind.OTHER and file == root:
            problems.append(FileProblem(file, "not a DICOM or .npy file"))
    series.extend(build_series(images))
    series.sort(key=display_order)
    problems.sort(key=lambda p: str(p.path))
    return StudyScan(series=tuple(series), problems=tuple(problems))


def load_study(path: str | os.PathLike[str]) -> list[Series]:
    """Read a study, warn once per file problem, and insist on at least one series.

    Args:
        path: A folder, a DICOM file, a ``.npy`` file or a DICOMDIR.

    Returns:
        The series in display order (at least one).

    Raises:
        NoUsableSeriesError: The path does not exist or holds no loadable series; the message names the
            path and why.
    """
    scan = read_study(path)
    for problem in scan.problems:
        warnings.warn(f"{problem.path}: {problem.reason}", ElnetWarning, stacklevel=2)
    return scan.require_series(str(path), "no DICOM or .npy image files found")
