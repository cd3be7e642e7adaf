"""Reading one DICOM file: the header fields used for grouping and the decoded frames with their geometry.

Each file is read once on the fast path: ``pydicom.pixels.pixel_array`` parses the header up to the pixel
data, keeps only the elements in ``HEADER_TAGS`` and decodes the pixels, so trailing bytes after the pixel
data are never parsed. Files the fast path cannot handle (deflated transfer syntax, no File Meta, no pixel
data, damage) are read again in full by ``pydicom.dcmread`` to find out why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.tag import Tag

from napari_elnet.io.scan import FileProblem
from napari_elnet.series import StudyInfo

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_HEADER_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "ImageType", "Modality", "StudyDate", "AccessionNumber",
    "StudyDescription", "SeriesDescription", "PatientName", "PatientID", "StudyInstanceUID",
    "SeriesInstanceUID", "SeriesNumber", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "SliceThickness", "SpacingBetweenSlices", "PixelSpacing",
    "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation", "WindowCenter", "WindowWidth",
    "RescaleSlope", "RescaleIntercept", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)  # fmt: skip
#: Elements kept from each header (everything else is skipped while parsing).
HEADER_TAGS: tuple[int, ...] = tuple(int(Tag(keyword)) for keyword in _HEADER_KEYWORDS)


@dataclass(frozen=True, eq=False)
class DicomFrame:
    """One 2-D image of a DICOM file with the geometry and value mapping that apply to it.

    Attributes:
        pixels: Stored values, shape (H, W), before rescaling.
        frame_index: Index of the frame in its file (0 for single-frame files).
        position: ImagePositionPatient (3,) in mm, or None.
        orientation: ImageOrientationPatient (6,), or None.
        pixel_spacing: PixelSpacing (row, column) in mm, or None.
        slice_gap: SpacingBetweenSlices, else SliceThickness (mm), or None.
        slope: RescaleSlope (1 when absent).
        intercept: RescaleIntercept (0 when absent).
        window: (WindowCenter, WindowWidth), first values, or None when absent or the width is not positive.
    """

    pixels: np.ndarray
    frame_index: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slice_gap: float | None
    slope: float
    intercept: float
    window: tuple[float, float] | None


@dataclass(frozen=True, eq=False)
class DicomImage:
    """The frames of one DICOM file and the series-level fields of its header."""

    path: Path
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    instance_number: int | None
    sop_instance_uid: str
    localizer: bool
    multi_frame: bool
    study: StudyInfo
    frames: tuple[DicomFrame, ...]


def read_dicom_file(path: Path) -> DicomImage | FileProblem | None:
    """Read and decode one DICOM file.

    Args:
        path: A file believed to hold DICOM.

    Returns:
        The image; None for a DICOMDIR or an object without pixel data (a report, a plan, a
        presentation state); a FileProblem naming the reason when the file cannot be read or decoded.
    """
    header = Dataset()
    try:
        pixels = pixel_array(path, ds_out=header, specific_tags=list(HEADER_TAGS), view_only=True)
    except Exception:  # any failure: read it the slow way to learn why
        return _read_slowly(path)
    return _image_from(path, header, pixels)


def _read_slowly(path: Path) -> DicomImage | FileProblem | None:
    """Full ``dcmread`` of a file the fast path could not handle."""
    try:
        ds = pydicom.dcmread(path, force=True, defer_size="64 KB")
    except Exception as error:  # pydicom raises many types for damaged files
        return FileProblem(path, f"not a readable DICOM file: {_describe(error)}")
    file_meta = getattr(ds, "file_meta", Dataset())
    sop_class = str(file_meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
    if sop_class == DICOMDIR_SOP_CLASS:
        return None
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        if sop_class:
            return None
        return FileProblem(path, "not a DICOM file: no DICOM header or pixel data found")
    syntax = file_meta.get("TransferSyntaxUID", None)
    syntax_name = getattr(syntax, "name", "unknown transfer syntax")
    try:
        pixels = ds.pixel_array
    except Exception as error:  # decoders raise many types
        return FileProblem(
            path, f"pixel data cannot be decoded ({syntax_name}): {_describe(error)}"
        )
    return _image_from(path, ds, pixels)


def _describe(error: Exception) -> str:
    """One line naming an exception's type and message."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _image_from(path: Path, ds: Dataset, pixels: np.ndarray) -> DicomImage | FileProblem:
    """Split decoded pixels into frames and attach the per-frame geometry."""
    samples = _int(ds.get("SamplesPerPixel")) or 1
    if samples != 1:
        photometric = ds.get("PhotometricInterpretation", "?")
        return FileProblem(
            path,
            f"colour image ({photometric}, {samples} samples per pixel): only greyscale is loaded",
        )
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    stack = pixels.reshape((1, *pixels.shape)) if pixels.ndim == 2 else pixels
    if stack.ndim != 3 or stack.shape[0] != n_frames:
        return FileProblem(
            path, f"pixel array of shape {pixels.shape} does not match NumberOfFrames={n_frames}"
        )
    multi_frame = "NumberOfFrames" in ds
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared_seq = ds.get("SharedFunctionalGroupsSequence") or []
    shared = shared_seq[0] if len(shared_seq) else None
    frames = []
    for index in range(n_frames):
        item = per_frame[index] if index < len(per_frame) else None
        frames.append(_frame(ds, stack[index], index, multi_frame, item, shared))
    image_type = [str(v).upper() for v in _as_list(ds.get("ImageType"))]
    return DicomImage(
        path=path,
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        series_number=_int(ds.get("SeriesNumber")),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        instance_number=_int(ds.get("InstanceNumber")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        localizer="LOCALIZER" in image_type,
        multi_frame=multi_frame,
        study=StudyInfo(
            study_uid=str(ds.get("StudyInstanceUID", "") or ""),
            accession_number=str(ds.get("AccessionNumber", "") or ""),
            study_date=str(ds.get("StudyDate", "") or ""),
            study_description=str(ds.get("StudyDescription", "") or ""),
            patient_id=str(ds.get("PatientID", "") or ""),
            patient_name=str(ds.get("PatientName", "") or ""),
        ),
        frames=tuple(frames),
    )


def _frame(
    ds: Dataset,
    pixels: np.ndarray,
    index: int,
    multi_frame: bool,
    item: Dataset | None,
    shared: Dataset | None,
) -> DicomFrame:
    """One frame's geometry: per-frame functional group, else shared group, else the top level.

    A multi-frame file's top-level ImagePositionPatient is not used: it cannot hold one position per frame.
    """

    def find(sequence: str, keyword: str, top_level: bool = True) -> Any:
        for group in (item, shared):
            inner = group.get(sequence) if group is not None else None
            if inner and keyword in inner[0]:
                return inner[0].get(keyword)
        return ds.get(keyword) if top_level else None

    position = _vector(find("PlanePositionSequence", "ImagePositionPatient", not multi_frame), 3)
    orientation = _vector(find("PlaneOrientationSequence", "ImageOrientationPatient"), 6)
    spacing = _vector(find("PixelMeasuresSequence", "PixelSpacing"), 2)
    gap = _float(find("PixelMeasuresSequence", "SpacingBetweenSlices"))
    if gap is None or gap <= 0:
        gap = _float(find("PixelMeasuresSequence", "SliceThickness"))
    center = _float(_first(find("FrameVOILUTSequence", "WindowCenter")))
    width = _float(_first(find("FrameVOILUTSequence", "WindowWidth")))
    slope = _float(find("PixelValueTransformationSequence", "RescaleSlope"))
    intercept = _float(find("PixelValueTransformationSequence", "RescaleIntercept"))
    return DicomFrame(
        pixels=pixels,
        frame_index=index,
        position=position,
        orientation=orientation,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
        slice_gap=gap if gap is not None and gap > 0 else None,
        slope=1.0 if slope is None or slope == 0 else slope,
        intercept=0.0 if intercept is None else intercept,
        window=(center, width) if center is not None and width is not None and width > 0 else None,
    )


def _as_list(value: Any) -> list[Any]:
    """A DICOM value as a list (empty for None, one item for a single value)."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _first(value: Any) -> Any:
    """First value of a possibly multi-valued element, or None."""
    values = _as_list(value)
    return values[0] if values else None


def _float(value: Any) -> float | None:
    """A finite float, or None when absent or unparseable."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if np.isfinite(result) else None


def _int(value: Any) -> int | None:
    """An int, or None when absent or unparseable."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _vector(value: Any, length: int) -> np.ndarray | None:
    """A finite float vector of the given length, or None."""
    values = _as_list(value)
    if len(values) != length:
        return None
    try:
        vector = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return vector if np.all(np.isfinite(vector)) else None
