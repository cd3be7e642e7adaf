"""Patient-space geometry of a stack of slices: normal, plane, slice order and slice spacing.

Tolerances (stated once, used everywhere):

- ``ORIENTATION_TOLERANCE``: two ImageOrientationPatient values belong to the same stack when no direction
  cosine differs by more than this (1e-3, about 0.06 degrees).
- ``DUPLICATE_TOLERANCE_MM``: two slices whose positions along the normal differ by less than this are at
  the same position (duplicates).
- ``SPACING_RTOL``: slice spacing is irregular when a gap between neighbouring slices differs from the
  median gap by more than this fraction of the median (5%: a missing slice doubles a gap; the few-percent
  jitter of real scanners, e.g. 6.96-7.07 mm, passes).
- ``MAX_COORDINATE_MM``: an ImagePositionPatient coordinate beyond 100 m is damage, not geometry; such a
  position is ignored (the series is then treated as having no slice geometry, with a warning).
- ``MAX_SPACING_MM``: a pixel or slice spacing must be finite, positive and at most 1 m; otherwise it is
  replaced by 1 mm with a warning that says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_elnet.common.series import Plane

ORIENTATION_TOLERANCE = 1e-3
DUPLICATE_TOLERANCE_MM = 1e-2
SPACING_RTOL = 0.05
MAX_COORDINATE_MM = 1e5
MAX_SPACING_MM = 1e3
FALLBACK_SPACING_MM = 1.0

_PLANE_BY_AXIS: tuple[Plane, ...] = ("sagittal", "coronal", "axial")


def orientation_matrix(iop: Sequence[float]) -> np.ndarray:
    """(3, 3) [row direction, column direction, slice normal] from the 6 ImageOrientationPatient values.

    Args:
        iop: Shape (6,): row direction cosines then column direction cosines (LPS).

    Returns:
        Shape (3, 3), each row a unit vector; the normal is row x column.
    """
    row = np.asarray(iop[:3], dtype=np.float64)
    col = np.asarray(iop[3:6], dtype=np.float64)
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    return np.stack([row, col, normal / np.linalg.norm(normal)])


def is_valid_orientation(iop: Sequence[float]) -> bool:
    """True for 6 finite values whose two directions are non-zero and not parallel."""
    values = np.asarray(iop, dtype=np.float64)
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        return False
    row, col = values[:3], values[3:]
    if np.linalg.norm(row) < 1e-6 or np.linalg.norm(col) < 1e-6:
        return False
    return bool(
        np.linalg.norm(np.cross(row, col)) > 1e-3 * np.linalg.norm(row) * np.linalg.norm(col)
    )


def is_valid_position(position: Sequence[float] | None) -> bool:
    """True for 3 finite coordinates within ``MAX_COORDINATE_MM`` of the origin."""
    if position is None or len(position) != 3:
        return False
    return all(np.isfinite(v) and abs(v) <= MAX_COORDINATE_MM for v in position)


def is_valid_spacing(value: float) -> bool:
    """True for a finite spacing in (0, ``MAX_SPACING_MM``] mm."""
    return bool(np.isfinite(value)) and 0.0 < value <= MAX_SPACING_MM


def checked_pixel_spacing(
    spacing: tuple[float, float] | None,
) -> tuple[tuple[float, float], list[str]]:
    """PixelSpacing (row, column) in mm, or the 1 mm fallback with a warning saying why."""
    if spacing is None:
        return (FALLBACK_SPACING_MM, FALLBACK_SPACING_MM), ["no PixelSpacing: 1 mm assumed"]
    if not all(is_valid_spacing(v) for v in spacing):
        return (FALLBACK_SPACING_MM, FALLBACK_SPACING_MM), [
            f"PixelSpacing {spacing[0]:g}\\{spacing[1]:g} is not a positive size up to "
            f"{MAX_SPACING_MM:g} mm: 1 mm assumed"
        ]
    return spacing, []


def same_orientation(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when two ImageOrientationPatient values agree within ``ORIENTATION_TOLERANCE``."""
    return all(abs(x - y) <= ORIENTATION_TOLERANCE for x, y in zip(a, b, strict=True))


def plane_of(normal: np.ndarray) -> Plane:
    """Anatomical plane from the dominant patient axis of a slice normal (x sagittal, y coronal, z axial)."""
    return _PLANE_BY_AXIS[int(np.argmax(np.abs(normal)))]


def slice_spacing(locations: Sequence[float]) -> tuple[float, list[str]]:
    """Median gap of sorted slice locations, with warnings when the gaps are irregular.

    Args:
        locations: Positions along the slice normal (mm), increasing, no duplicates, at least two.

    Returns:
        The spacing in mm and the warnings (empty when every gap is within ``SPACING_RTOL`` of the median).
    """
    gaps = np.diff(np.asarray(locations, dtype=np.float64))
    spacing = float(np.median(gaps))
    if not is_valid_spacing(spacing):
        return FALLBACK_SPACING_MM, [
            f"slice spacing from the positions ({spacing:g} mm) is not a positive size up to "
            f"{MAX_SPACING_MM:g} mm: 1 mm assumed"
        ]
    deviation = np.abs(gaps - spacing)
    if spacing > 0 and float(deviation.max()) > SPACING_RTOL * spacing:
        worst = int(np.argmax(deviation))
        return spacing, [
            f"irregular slice spacing: gaps range {gaps.min():.3f}-{gaps.max():.3f} mm around the median "
            f"{spacing:.3f} mm (tolerance {SPACING_RTOL:.0%}); largest deviation between slices {worst} and "
            f"{worst + 1}"
        ]
    return spacing, []
