"""Reading a file or folder into series and problems; the user-facing wrapper that warns and raises."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from napari_elnet.common.errors import ElnetWarning, NoUsableSeriesError
from napari_elnet.common.series import Series
from napari_elnet.io.dicom_headers import DicomImage
from napari_elnet.io.dicom_series import build_series
from napari_elnet.io.files import DICOMDIR_NAME, FileKind, file_kind, list_files
from napari_elnet.io.mrnet import read_npy_volume
from napari_elnet.io.parallel import read_dicom_files
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
    if not root.is_dir() and not root.is_file():  # a FIFO, a device or a socket: never opened
        return StudyScan(series=(), problems=(FileProblem(root, "not a regular file or folder"),))
    if root.is_dir():
        files, unlisted = list_files(root)
        return read_files(files, problems=[FileProblem(p, reason) for p, reason in unlisted])
    if file_kind(root) is FileKind.OTHER:
        return StudyScan(series=(), problems=(FileProblem(root, "not a DICOM or .npy file"),))
    return read_files([root])


def read_files(
    files: Iterable[Path], kind: FileKind | None = None, problems: Iterable[FileProblem] = ()
) -> StudyScan:
    """Read DICOM and MRNet ``.npy`` files into series: the one loop of every study reader.

    Args:
        files: The files of one study.
        kind: What every file is (a caller that has classified them already); None classifies
            each file by :func:`~napari_elnet.io.files.file_kind`, and skips those that are neither.
        problems: Problems found before reading (e.g. unlisted folder entries), kept in the result.

    Returns:
        The series in display order and the problems sorted by path.
    """
    found = list(problems)
    skipped = 0
    images: list[DicomImage] = []
    series: list[Series] = []
    classified = [(file, kind or file_kind(file)) for file in files]
    # Decoded in worker processes when that pays (many compressed files): napari_elnet.io.parallel.
    decoded = iter(read_dicom_files([f for f, k in classified if k is FileKind.DICOM]))
    for file, file_is in classified:
        if file_is is FileKind.DICOM:
            result = next(decoded)
            if isinstance(result, DicomImage):
                images.append(result)
            elif isinstance(result, FileProblem):
                found.append(result)
            else:  # None: a DICOM object that holds no image series
                skipped += 1
        elif file_is is FileKind.NPY:
            volume = read_npy_volume(file)
            (series if isinstance(volume, Series) else found).append(volume)  # type: ignore[arg-type]
    series.extend(build_series(images))
    series.sort(key=display_order)
    found.sort(key=lambda p: str(p.path))
    return StudyScan(series=tuple(series), problems=tuple(found), skipped=skipped)


NOTHING_FOUND = "no DICOM or .npy image files found"
"""Why a path gave neither a series nor a problem (and no DICOM file was passed over)."""


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
    return scan.require_series(str(path), NOTHING_FOUND)
