"""MRNet volumes: ``.npy`` arrays of shape (S, 256, 256), one file per case and plane.

Rules: a 3-D numeric array is (S, H, W); a 2-D array is one slice; anything else, an empty array, a
non-numeric dtype or a file that needs pickle is a FileProblem (files are loaded with
``allow_pickle=False``, so nothing is unpickled). The plane comes from the parent folder name
(axial/coronal/sagittal, any case), else "unknown"; the series number is the case id when the file name
is numeric. MRNet stores no geometry: spacing is (1, 1, 1) and the series says so in its warnings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_elnet.common.series import PLANES, Plane, Series
from napari_elnet.io.scan import FileProblem

GEOMETRY_WARNING = "MRNet volume: no geometry stored, spacing (1, 1, 1) mm assumed"


def read_npy_volume(path: Path) -> Series | FileProblem:
    """Load one MRNet-style ``.npy`` volume.

    Args:
        path: A ``.npy`` file.

    Returns:
        The series, or a FileProblem naming why the file is not a usable volume.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return FileProblem(path, f"not a readable .npy array: {type(error).__name__}: {error}")
    if not isinstance(array, np.ndarray):
        array.close()
        return FileProblem(path, "a .npz archive, not a single .npy array")
    if array.dtype.kind not in "biuf":
        return FileProblem(path, f"array of dtype {array.dtype} is not a greyscale image")
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        return FileProblem(path, f"expected a 3-D (S, H, W) or 2-D array, got shape {array.shape}")
    if array.size == 0:
        return FileProblem(path, f"empty array of shape {array.shape}")
    case = path.stem
    return Series(
        array=np.ascontiguousarray(array, dtype=np.float32),
        spacing=(1.0, 1.0, 1.0),
        plane=_plane_from_folder(path),
        number=int(case) if case.isdigit() else None,
        description=f"MRNet {case}",
        files=(path,) * array.shape[0],
        warnings=(GEOMETRY_WARNING,),
        modality="MR",
    )


def _plane_from_folder(path: Path) -> Plane:
    """Plane named by the parent folder, else "unknown"."""
    name = path.parent.name.lower()
    for plane in PLANES:
        if name == plane:
            return plane
    return "unknown"
