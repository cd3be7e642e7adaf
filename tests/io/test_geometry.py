"""Slice geometry of loaded DICOM series (napari_elnet.io.geometry and the sorting in dicom_series).

Invariants, one test each:

1. Slices are sorted by position along the normal, whatever the InstanceNumbers and file names.
2. Slice spacing is the median gap between positions, not SliceThickness.
3. Gaps off the median by more than SPACING_RTOL give a warning naming the tolerance; jitter within it
   gives none.
4. Duplicate positions keep the slice with the lowest InstanceNumber and name the others in a warning.
5. orientation is [row, column, normal] with the normal towards increasing slice index; origin is the
   position of slice 0.
6. The plane is the dominant axis of the normal: x sagittal, y coronal, z axial (also when oblique).
7. Without positions the order is InstanceNumber order, the plane "unknown", and a warning says so.
8. A single slice takes its spacing from SpacingBetweenSlices/SliceThickness.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from support.dicom_factory import AXIAL, CORONAL, SAGITTAL, write_slice

from napari_elnet.io import read_study
from napari_elnet.io.geometry import (
    SPACING_RTOL,
    orientation_matrix,
    plane_of,
    slice_spacing,
)

OBLIQUE_AXIAL = (1.0, 0.0, 0.0, 0.0, 0.99096, 0.134158)  # the real brain series' orientation


def _write_shuffled(folder: Path, locations: list[float], orientation: tuple[float, ...]) -> None:
    """Slices at ``locations`` along the normal; value = rank of the location; names/instances shuffled."""
    normal = np.cross(orientation[:3], orientation[3:])
    rng = random.Random(3)
    instances = list(range(1, len(locations) + 1))
    names = [f"IM{n:04d}.dcm" for n in rng.sample(range(1000), len(locations))]
    rng.shuffle(instances)
    order = np.argsort(locations)
    for rank, index in enumerate(order):
        write_slice(
            folder / names[index],
            value=rank,
            position=tuple(float(v) for v in normal * locations[index] + (10.0, -20.0, 30.0)),
            orientation=orientation,
            instance=instances[index],
        )


def test_slices_sorted_by_position_not_instance_or_name(tmp_path: Path) -> None:
    locations = [12.0, -3.0, 0.0, 9.0, 3.0, 6.0]
    _write_shuffled(tmp_path, locations, OBLIQUE_AXIAL)

    (series,) = read_study(tmp_path).series

    np.testing.assert_array_equal(series.array[:, 0, 0], np.arange(6))


def test_spacing_is_median_position_gap_not_thickness(tmp_path: Path) -> None:
    for i in range(5):
        write_slice(tmp_path / f"{i}.dcm", value=i, position=(0, 0, 2.5 * i), thickness=5.0,
                    pixel_spacing=(0.4, 0.6))  # fmt: skip

    (series,) = read_study(tmp_path).series

    assert series.spacing == pytest.approx((2.5, 0.4, 0.6))
    assert series.warnings == ()


def test_irregular_spacing_warns_with_tolerance() -> None:
    jitter = [0.0, 6.96, 14.03, 21.0, 28.0]  # gaps 6.96-7.07: within 5%
    gap = [0.0, 2.0, 4.0, 8.0, 10.0]  # one missing slice

    spacing_ok, warnings_ok = slice_spacing(jitter)
    spacing_gap, warnings_gap = slice_spacing(gap)

    assert spacing_ok == pytest.approx(6.985)
    assert warnings_ok == []
    assert spacing_gap == pytest.approx(2.0)
    assert len(warnings_gap) == 1
    assert f"tolerance {SPACING_RTOL:.0%}" in warnings_gap[0]
    assert "2.000-4.000 mm" in warnings_gap[0]


def test_duplicate_positions_keep_lowest_instance(tmp_path: Path) -> None:
    write_slice(tmp_path / "a.dcm", value=0, position=(0, 0, 0), instance=1)
    write_slice(tmp_path / "b.dcm", value=1, position=(0, 0, 2), instance=5)
    write_slice(tmp_path / "c.dcm", value=2, position=(0, 0, 2.001), instance=3)
    write_slice(tmp_path / "d.dcm", value=3, position=(0, 0, 4), instance=4)

    (series,) = read_study(tmp_path).series

    np.testing.assert_array_equal(series.array[:, 0, 0], [0, 2, 3])
    assert [f.name for f in series.files] == ["a.dcm", "c.dcm", "d.dcm"]
    assert series.spacing[0] == pytest.approx(2.0, abs=1e-3)
    (warning,) = series.warnings
    assert warning.startswith("1 slice(s) at an already occupied position dropped")
    assert "b.dcm" in warning


def test_orientation_rows_and_origin(tmp_path: Path) -> None:
    # Sagittal: the normal row x column = (0,1,0) x (0,0,-1) = (-1,0,0); slices written along +x, so
    # increasing slice index runs along -x.
    for i, x in enumerate((5.0, 0.0, -5.0)):
        write_slice(tmp_path / f"{i}.dcm", value=i, position=(x, -10.0, 20.0),
                    orientation=SAGITTAL)  # fmt: skip

    (series,) = read_study(tmp_path).series

    np.testing.assert_allclose(series.orientation, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=1e-12)
    assert series.origin == (5.0, -10.0, 20.0)
    np.testing.assert_array_equal(series.array[:, 0, 0], [0, 1, 2])


@pytest.mark.parametrize(
    ("iop", "plane"),
    [
        (SAGITTAL, "sagittal"),
        (CORONAL, "coronal"),
        (AXIAL, "axial"),
        (OBLIQUE_AXIAL, "axial"),
        ((0.0, 0.8, -0.6, 0.0, 0.6, 0.8), "sagittal"),
    ],
)
def test_plane_from_dominant_normal_axis(iop: tuple[float, ...], plane: str) -> None:
    assert plane_of(orientation_matrix(np.array(iop))[2]) == plane


def test_no_positions_keep_instance_order(tmp_path: Path) -> None:
    for name, instance, value in (("x.dcm", 3, 30), ("y.dcm", 1, 10), ("z.dcm", 2, 20)):
        write_slice(tmp_path / name, value=value, position=None, orientation=None,
                    instance=instance, thickness=4.0)  # fmt: skip

    (series,) = read_study(tmp_path).series

    np.testing.assert_array_equal(series.array[:, 0, 0], [10, 20, 30])
    assert (series.plane, series.orientation, series.origin) == ("unknown", None, None)
    assert series.spacing[0] == 4.0
    assert any(w.startswith("no slice geometry") for w in series.warnings)


def test_single_slice_spacing_from_header(tmp_path: Path) -> None:
    write_slice(tmp_path / "one.dcm", thickness=3.5)

    (series,) = read_study(tmp_path).series

    assert series.spacing == (3.5, 0.5, 0.5)
    assert series.plane == "axial"
