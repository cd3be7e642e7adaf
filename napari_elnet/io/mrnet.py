"""MRNet volumes: ``.npy`` arrays of shape (S, 256, 256), one file per case and plane.

Rules: a 3-D numeric array is (S, H, W); a 2-D array is one slice; anything else, an empty array, a
non-numeric dtype or a file that needs pickle is a FileProblem (nothing is ever unpickled). The 128-byte
(or longer) header is read first and the size it declares is checked against the bytes in the file
before any array is allocated, so a small file claiming a huge shape is a FileProblem, not a
MemoryError. Only regular files are read (a FIFO or device is a FileProblem). The plane comes from the parent folder name
(axial/coronal/sagittal, any case), else "unknown"; the series number is the case id when the file name
is numeric. MRNet stores no geometry: spacing is (1, 1, 1) and the series says so in its warnings.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from napari_elnet.common.series import PLANES, Plane, Series
from napari_elnet.io.files import describe_mode, os_reason
from napari_elnet.io.scan import FileProblem

_ZIP_MAGIC = b"PK\x03\x04"

GEOMETRY_WARNING = "MRNet volume: no geometry stored, spacing (1, 1, 1) mm assumed"


def read_npy_volume(path: Path) -> Series | FileProblem:
    """Load one MRNet-style ``.npy`` volume.

    Args:
        path: A ``.npy`` file.

    Returns:
        The series, or a FileProblem naming why the file is not a usable volume.
    """
    try:
        array = read_npy(path)
    except NpyError as error:
        return FileProblem(path, str(error))
    except OSError as error:
        return FileProblem(path, f"cannot be read: {os_reason(error)}")
    if array.ndim == 2:
        array = array[np.newaxis]
    with np.errstate(over="ignore", invalid="ignore"):  # counted and reported below
        volume = np.ascontiguousarray(array, dtype=np.float32)
    warnings = [GEOMETRY_WARNING]
    finite = np.isfinite(volume)
    non_finite = int(volume.size - np.count_nonzero(finite))
    if non_finite:
        volume[~finite] = 0.0
        warnings.append(f"{non_finite} voxel(s) are not finite float32 values: set to 0")
    case = path.stem
    return Series(
        array=volume,
        spacing=(1.0, 1.0, 1.0),
        plane=_plane_from_folder(path),
        number=int(case) if case.isascii() and case.isdigit() and len(case) < 19 else None,
        description=f"MRNet {case}",
        files=(path,) * array.shape[0],
        warnings=tuple(warnings),
        modality="MR",
    )


class NpyError(ValueError):
    """A ``.npy`` file that is not a usable numeric array; the message says why."""


def read_npy(path: Path) -> np.ndarray:
    """A numeric ``.npy`` array, with its header checked against the file size before allocation.

    Raises:
        NpyError: not a regular file, a .npz archive, a damaged header, a non-numeric dtype, or a
            declared size that does not match the bytes in the file.
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NpyError(f"{describe_mode(info.st_mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            magic = handle.read(6)
            if magic.startswith(_ZIP_MAGIC):
                raise NpyError("a .npz archive, not a single .npy array")
            handle.seek(0)
            try:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
            except Exception as error:  # numpy's header parser (ast) raises many types
                if isinstance(error, MemoryError):
                    raise
                raise NpyError(
                    f"not a readable .npy array: {type(error).__name__}: {str(error)[:200]}"
                ) from None
            if dtype.hasobject:
                raise NpyError(
                    f"not a readable .npy array: dtype {dtype} needs pickle, which is never run"
                )
            if dtype.kind not in "biuf" or dtype.fields is not None:
                raise NpyError(f"array of dtype {dtype} is not a greyscale image")
            if any(not isinstance(n, int) or n < 0 for n in shape):
                raise NpyError(f"invalid array shape {shape} in the .npy header")
            count = math.prod(shape)
            present = info.st_size - handle.tell()
            if count * dtype.itemsize != present:
                raise NpyError(
                    f".npy header declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes), "
                    f"the file holds {present} bytes of data"
                )
            if len(shape) not in (2, 3):
                raise NpyError(f"expected a 3-D (S, H, W) or 2-D array, got shape {shape}")
            if count == 0:
                raise NpyError(f"empty array of shape {shape}")
            # a bytearray makes the array writable (frombuffer on bytes would be read-only)
            data = np.frombuffer(bytearray(handle.read(present)), dtype=dtype, count=count)
    finally:
        os.close(fd)
    return data.reshape(shape, order="F" if fortran else "C")


def _plane_from_folder(path: Path) -> Plane:
    """Plane named by the parent folder, else "unknown"."""
    name = path.parent.name.lower()
    for plane in PLANES:
        if name == plane:
            return plane
    return "unknown"
