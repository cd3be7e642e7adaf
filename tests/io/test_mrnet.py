"""MRNet .npy volumes (napari_elnet.io.mrnet).

Invariants, one test each:

1. A (S, H, W) uint8 volume loads as float32 with its values; plane from the parent folder, number from
   the numeric case id, description "MRNet <id>", spacing (1, 1, 1) and a geometry warning.
2. A parent folder that is not a plane name gives plane "unknown"; a non-numeric name gives number None.
3. A 2-D array is one slice.
4. Arrays of other ranks, empty arrays and non-numeric dtypes are FileProblems.
5. An object array is a FileProblem and is never unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_elnet.io import read_study
from napari_elnet.io.mrnet import GEOMETRY_WARNING


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_mrnet_volume_loads_with_plane_from_folder(tmp_path: Path, plane: str) -> None:
    volume = np.random.default_rng(1).integers(0, 256, size=(3, 256, 256), dtype=np.uint8)
    path = tmp_path / "valid" / plane / "0007.npy"
    path.parent.mkdir(parents=True)
    np.save(path, volume)

    scan = read_study(path)

    (series,) = scan.series
    assert scan.problems == ()
    assert series.array.dtype == np.float32
    np.testing.assert_array_equal(series.array, volume.astype(np.float32))
    assert (series.plane, series.number, series.description) == (plane, 7, "MRNet 0007")
    assert series.spacing == (1.0, 1.0, 1.0)
    assert series.warnings == (GEOMETRY_WARNING,)
    assert series.files == (path,) * 3


def test_mrnet_unknown_plane_and_non_numeric_name(tmp_path: Path) -> None:
    np.save(tmp_path / "case_a.npy", np.zeros((2, 8, 8), dtype=np.uint8))

    (series,) = read_study(tmp_path).series

    assert (series.plane, series.number, series.description) == ("unknown", None, "MRNet case_a")


def test_mrnet_2d_array_is_one_slice(tmp_path: Path) -> None:
    np.save(tmp_path / "0001.npy", np.arange(16, dtype=np.uint8).reshape(4, 4))

    (series,) = read_study(tmp_path).series

    assert series.shape == (1, 4, 4)


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.zeros((2, 2, 4, 4), dtype=np.uint8), "expected a 3-D (S, H, W) or 2-D array"),
        (np.zeros((0, 4, 4), dtype=np.uint8), "empty array"),
        (np.array(["a", "b"]), "is not a greyscale image"),
        (np.zeros((2, 2), dtype=np.complex64), "is not a greyscale image"),
    ],
)
def test_mrnet_bad_arrays_are_problems(tmp_path: Path, array: np.ndarray, reason: str) -> None:
    path = tmp_path / "0002.npy"
    np.save(path, array)

    scan = read_study(tmp_path)

    assert scan.series == ()
    (problem,) = scan.problems
    assert problem.path == path
    assert reason in problem.reason


UNPICKLED: list[str] = []


def _record_unpickling(marker: str) -> None:
    """Called by pickle when a ``_Boom`` is loaded."""
    UNPICKLED.append(marker)


class _Boom:
    """An object whose unpickling leaves a trace in UNPICKLED."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record_unpickling, ("unpickled",))


def test_mrnet_object_array_is_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "0003.npy"
    array = np.empty(1, dtype=object)
    array[0] = _Boom()
    np.save(path, array, allow_pickle=True)
    assert np.load(path, allow_pickle=True)[0] is None  # the file really runs code when unpickled
    assert UNPICKLED == ["unpickled"]
    UNPICKLED.clear()

    scan = read_study(tmp_path)

    assert scan.series == ()
    (problem,) = scan.problems
    assert "not a readable .npy array" in problem.reason
    assert UNPICKLED == []
