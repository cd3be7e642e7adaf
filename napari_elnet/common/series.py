"""The image series: one stack of parallel slices with its geometry and provenance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Plane = Literal["axial", "coronal", "sagittal", "unknown"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class StudyInfo:
    """Identity of the study a series belongs to (all empty strings when unknown)."""

    study_uid: str = ""
    accession_number: str = ""
    study_date: str = ""
    study_description: str = ""
    patient_id: str = ""
    patient_name: str = ""


@dataclass(frozen=True, eq=False)
class Series:
    """One image series, ready to view and to feed to a model.

    Attributes:
        array: Pixel values, shape (S, H, W), float32, after RescaleSlope/Intercept; slices ordered along
            ``orientation[2]`` (increasing position along the slice normal).
        spacing: Voxel size in mm as (slice, row, column): slice spacing is the median distance between
            consecutive slice positions, row/column spacing is PixelSpacing.
        plane: Anatomical plane from the dominant patient axis of the slice normal.
        orientation: (3, 3) direction cosines in patient coordinates (LPS): row 0 is the direction along a row
            (increasing column index), row 1 along a column (increasing row index), row 2 the slice
            normal pointing towards increasing slice index. ``None`` without geometry.
        origin: Patient position (mm, LPS) of the centre of the first voxel of slice 0, or ``None``.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    plane: Plane = "unknown"
    orientation: np.ndarray | None = None
    origin: tuple[float, float, float] | None = None
    number: int | None = None
    description: str = ""
    window: tuple[float, float] | None = None
    files: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    uid: str = ""
    modality: str = ""
    study: StudyInfo = field(default_factory=StudyInfo)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(S, H, W)."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """Display name, ``"{number}: {description} ({plane})"``."""
        number = "?" if self.number is None else str(self.number)
        description = self.description or "series"
        return f"{number}: {description} ({self.plane})"


MIN_SLICES = 3
"""Fewest slices of a series a model reads (localizers and scouts have fewer)."""


def choose_series(series: Sequence[Series], plane: Plane) -> int | None:
    """Index of the series to read for ``plane``: the one of that plane with the most slices.

    Series with fewer than :data:`MIN_SLICES` slices are passed over; on equal slice counts the
    first wins. None when no series has that plane. Prediction and the DICOM training sets pick
    series with this one rule.
    """
    candidates = [
        (s.shape[0], -i)
        for i, s in enumerate(series)
        if s.plane == plane and s.shape[0] >= MIN_SLICES
    ]
    return -max(candidates)[1] if candidates else None
