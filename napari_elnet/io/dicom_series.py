"""Grouping decoded DICOM frames into series: split, sort along the normal, stack and describe.

Rules, in order:

1. Group frames by SeriesInstanceUID; split a group by image size (Rows x Columns), by localizer
   (ImageType contains LOCALIZER), by whether the frames have a position, and by ImageOrientationPatient
   (equal within ``geometry.ORIENTATION_TOLERANCE``).
2. Frames with a position are sorted by the projection of ImagePositionPatient on the slice normal
   (row x column cosines), ties broken by InstanceNumber, file name and frame index. Frames at the same
   position (within ``geometry.DUPLICATE_TOLERANCE_MM``) are duplicates: the first in that order (lowest
   InstanceNumber) is kept, the others are dropped and named in a warning.
3. Slice spacing is the median gap between positions; one slice, or no positions: SpacingBetweenSlices,
   else SliceThickness, else 1 mm. Spacings that are not finite, not positive or beyond
   ``geometry.MAX_SPACING_MM`` are replaced by 1 mm with a warning; a position beyond
   ``geometry.MAX_COORDINATE_MM`` counts as no position (with a warning). Frames without a position keep InstanceNumber / file / frame order and
   the series gets plane "unknown" and a warning.
4. Values are RescaleSlope * stored + RescaleIntercept per frame, float32; values that are not finite
   after that (NaN/inf float pixels, or a slope that overflows float32) are set to 0 and the series
   warns how many there were.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_elnet.common.series import Plane, Series
from napari_elnet.io import geometry
from napari_elnet.io.dicom_headers import DicomFrame, DicomImage


@dataclass(frozen=True, eq=False)
class _Slice:
    """A frame together with the file it came from."""

    image: DicomImage
    frame: DicomFrame

    @property
    def order(self) -> tuple[int, str, int]:
        """Tie-break order: InstanceNumber, file name, frame index."""
        number = self.image.instance_number
        return (
            number if number is not None else 2**31,
            str(self.image.path),
            self.frame.frame_index,
        )


def build_series(images: Iterable[DicomImage]) -> list[Series]:
    """Group the frames of decoded files into series (unsorted; see ``read_study`` for the order)."""
    groups = _group(images)
    parts_per_uid: dict[object, int] = defaultdict(int)
    for key in groups:
        parts_per_uid[key[0]] += 1
    return [_make_series(slices, parts_per_uid[key[0]]) for key, slices in groups.items()]


def _group(images: Iterable[DicomImage]) -> dict[tuple[object, ...], list[_Slice]]:
    """Frames keyed by (series UID, size, localizer, has position, orientation cluster)."""
    groups: dict[tuple[object, ...], list[_Slice]] = {}
    orientations: dict[tuple[object, ...], list[tuple[float, ...]]] = defaultdict(list)
    for image in images:
        for frame in image.frames:
            base = (
                image.series_uid,
                frame.pixels.shape,
                image.localizer,
                _has_geometry(frame),
            )
            cluster = _orientation_cluster(orientations[base], frame.orientation)
            groups.setdefault((*base, cluster), []).append(_Slice(image, frame))
    return groups


def _has_geometry(frame: DicomFrame) -> bool:
    """Whether a frame has a usable position and an orientation."""
    return frame.orientation is not None and geometry.is_valid_position(frame.position)


def _orientation_cluster(
    known: list[tuple[float, ...]], orientation: tuple[float, ...] | None
) -> int:
    """Index of the orientation in ``known`` (appended when new and valid); -1 for none or invalid."""
    if orientation is None:
        return -1
    for index, other in enumerate(known):
        if geometry.same_orientation(other, orientation):
            return index
    if not geometry.is_valid_orientation(orientation):
        return -1
    known.append(orientation)
    return len(known) - 1


def _make_series(slices: list[_Slice], parts_of_uid: int) -> Series:
    """Sort, de-duplicate and stack one group into a Series."""
    first = slices[0]
    warnings: list[str] = []
    has_geometry = _has_geometry(first.frame) and geometry.is_valid_orientation(
        first.frame.orientation  # type: ignore[arg-type]
    )
    orientation: np.ndarray | None = None
    origin: tuple[float, float, float] | None = None
    plane: Plane = "unknown"
    if has_geometry:
        orientation = geometry.orientation_matrix(first.frame.orientation)  # type: ignore[arg-type]
        slices, locations, dropped = _sort_along(slices, orientation[2])
        if dropped:
            warnings.append(_duplicates_warning(dropped))
        if len(locations) > 1:
            slice_spacing, spacing_warnings = geometry.slice_spacing(locations)
            warnings.extend(spacing_warnings)
        else:
            slice_spacing = _header_gap(slices)
        origin = tuple(float(v) for v in slices[0].frame.position)  # type: ignore[assignment,union-attr]
        plane = geometry.plane_of(orientation[2])
    else:
        slices = sorted(slices, key=lambda s: s.order)
        slice_spacing = _header_gap(slices)
        if first.frame.position is not None and not geometry.is_valid_position(
            first.frame.position
        ):
            warnings.append(
                f"ImagePositionPatient {first.frame.position} is not within "
                f"{geometry.MAX_COORDINATE_MM:g} mm of the origin: ignored"
            )
        warnings.append(
            "no slice geometry (ImagePositionPatient/ImageOrientationPatient): slices are in "
            "InstanceNumber/frame order, plane unknown, slice spacing from the header or 1 mm"
        )
    pixel_spacing, spacing_warnings = geometry.checked_pixel_spacing(first.frame.pixel_spacing)
    warnings.extend(spacing_warnings)
    if first.image.localizer:
        warnings.append("localizer (ImageType LOCALIZER), kept apart from the main stack")
    if parts_of_uid > 1:
        warnings.append(
            f"SeriesInstanceUID {first.image.series_uid} was split into {parts_of_uid} stacks by "
            "orientation, image size or localizer"
        )
    description = first.image.series_description
    if first.image.localizer:
        description = f"{description} (localizer)" if description else "localizer"
    array, non_finite = _stack(slices)
    if non_finite:
        warnings.append(
            f"{non_finite} voxel(s) are not finite after RescaleSlope/RescaleIntercept (slope "
            f"{first.frame.slope:g}, intercept {first.frame.intercept:g}): set to 0"
        )
    return Series(
        array=array,
        spacing=(float(slice_spacing), float(pixel_spacing[0]), float(pixel_spacing[1])),
        plane=plane,
        orientation=orientation,
        origin=origin,
        number=first.image.series_number,
        description=description,
        window=_window(slices),
        files=tuple(s.image.path for s in slices),
        warnings=tuple(warnings),
        uid=first.image.series_uid,
        modality=first.image.modality,
        study=first.image.study,
    )


def _sort_along(
    slices: Sequence[_Slice], normal: np.ndarray
) -> tuple[list[_Slice], list[float], list[_Slice]]:
    """Slices sorted by position along ``normal``, their locations, and the duplicates dropped."""
    located = sorted(
        ((float(np.dot(s.frame.position, normal)), s) for s in slices),  # type: ignore[arg-type]
        key=lambda pair: (pair[0], pair[1].order),
    )
    kept: list[_Slice] = []
    locations: list[float] = []
    dropped: list[_Slice] = []
    for location, item in located:
        if locations and location - locations[-1] < geometry.DUPLICATE_TOLERANCE_MM:
            duplicate_of = kept[-1]
            if item.order < duplicate_of.order:
                kept[-1], locations[-1], item = item, location, duplicate_of
            dropped.append(item)
            continue
        kept.append(item)
        locations.append(location)
    return kept, locations, dropped


def _duplicates_warning(dropped: Sequence[_Slice]) -> str:
    """Warning naming the slices dropped as duplicates."""
    names = ", ".join(_slice_name(s) for s in dropped[:3])
    more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
    return (
        f"{len(dropped)} slice(s) at an already occupied position dropped (the lowest InstanceNumber "
        f"at each position is kept): {names}{more}"
    )


def _slice_name(item: _Slice) -> str:
    """File name, with the frame number for multi-frame files."""
    name = Path(item.image.path).name
    return f"{name} frame {item.frame.frame_index + 1}" if item.image.multi_frame else name


def _header_gap(slices: Sequence[_Slice]) -> float:
    """Slice spacing from SpacingBetweenSlices/SliceThickness of the first slice, else 1 mm."""
    gap = slices[0].frame.slice_gap
    return gap if gap is not None and geometry.is_valid_spacing(gap) else 1.0


def _stack(slices: Sequence[_Slice]) -> tuple[np.ndarray, int]:
    """(S, H, W) float32 of rescaled values, and how many were not finite (those are set to 0)."""
    height, width = slices[0].frame.pixels.shape
    out = np.empty((len(slices), height, width), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # counted and reported below
        _fill(out, slices)
    finite = np.isfinite(out)
    non_finite = int(out.size - np.count_nonzero(finite))
    if non_finite:
        out[~finite] = 0.0
    return out, non_finite


def _fill(out: np.ndarray, slices: Sequence[_Slice]) -> None:
    """Write each slice's rescaled values into ``out`` (S, H, W) float32."""
    for index, item in enumerate(slices):
        plane = out[index]
        plane[...] = item.frame.pixels
        if item.frame.slope != 1.0:
            plane *= np.float32(item.frame.slope)
        if item.frame.intercept != 0.0:
            plane += np.float32(item.frame.intercept)


def _window(slices: Sequence[_Slice]) -> tuple[float, float] | None:
    """Median (center, width) over the slices that have a window, or None."""
    windows = [s.frame.window for s in slices if s.frame.window is not None]
    if not windows:
        return None
    centers, widths = zip(*windows, strict=True)
    return float(np.median(centers)), float(np.median(widths))
