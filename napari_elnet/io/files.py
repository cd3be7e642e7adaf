"""Finding the candidate image files under a path and telling DICOM from .npy from everything else."""

from __future__ import annotations

import os
import stat
from enum import Enum
from pathlib import Path

#: File name suffixes (lower case) taken as DICOM without looking inside.
DICOM_SUFFIXES: frozenset[str] = frozenset({".dcm", ".dicom", ".ima"})
#: File name of a DICOM media directory (an index, never an image).
DICOMDIR_NAME = "DICOMDIR"
_PREAMBLE_LENGTH = 128
_MAGIC = b"DICM"


_KIND_NAMES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegularFileError(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket or a folder), or one too large."""


def describe_mode(mode: int) -> str:
    """What kind of file system object ``mode`` (from ``os.stat``) describes, in words."""
    for test, name in _KIND_NAMES:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: Path, max_bytes: int | None = None, head: int | None = None) -> bytes:
    """The bytes of a regular file (symlinks followed), never blocking on a FIFO or reading a device.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO,
    a device (``/dev/zero``) or a symlink to one is refused before anything is read.

    Args:
        path: The file.
        max_bytes: Refuse files larger than this many bytes (None: no limit).
        head: Read at most this many bytes from the start (None: the whole file).

    Returns:
        The file's bytes (or its first ``head`` bytes).

    Raises:
        NotRegularFileError: not a regular file, or larger than ``max_bytes``.
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(f"{describe_mode(info.st_mode)}, not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise NotRegularFileError(
                f"file of {info.st_size} bytes is larger than the {max_bytes} bytes allowed"
            )
        want = info.st_size if head is None else min(head, info.st_size)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(want)
    finally:
        os.close(fd)


def os_reason(error: OSError) -> str:
    """A short reason for an OSError (its strerror, else its message)."""
    return error.strerror or str(error) or type(error).__name__


class FileKind(Enum):
    """What a file is, for the loader."""

    DICOM = "dicom"
    NPY = "npy"
    DICOMDIR = "dicomdir"
    OTHER = "other"


def has_dicom_preamble(path: Path) -> bool:
    """True when the file starts with the 128-byte DICOM preamble and ``DICM``; False on any OSError."""
    try:
        head = read_regular_file(path, head=_PREAMBLE_LENGTH + len(_MAGIC))
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

    Symlinks to regular files count as regular files; FIFOs, devices, sockets, symlinks to them and
    dangling symlinks are never opened: each is reported with the reason it was skipped.

    Args:
        root: A folder.

    Returns:
        The files, and (path, reason) for every folder that could not be listed and every entry that
        is not a regular file.
    """
    files: list[Path] = []
    unreadable: list[tuple[Path, str]] = []

    def on_error(error: OSError) -> None:
        unreadable.append(
            (Path(error.filename or root), f"folder cannot be listed: {error.strerror}")
        )

    for folder, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            reason = _not_regular_reason(path)
            if reason is None:
                files.append(path)
            else:
                unreadable.append((path, reason))
    return files, unreadable


def _not_regular_reason(path: Path) -> str | None:
    """None for a regular file (or a symlink to one), else why the entry is skipped."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot be read: {os_reason(error)}"
    if stat.S_ISREG(mode):
        return None
    return f"{describe_mode(mode)}, not a regular file: skipped"


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
        if not p.is_file():  # also False for FIFOs and devices
            return False
        return p.suffix.lower() in {".dcm", ".npy"} or has_dicom_preamble(p)
    except (OSError, TypeError, ValueError):
        return False
