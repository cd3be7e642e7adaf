"""Small DICOM files written with pydicom for the io tests (helpers only; this module holds no tests).

Pixel values encode identity: every pixel of a generated slice equals its ``value`` argument, so a test
can read the slice order straight from ``array[:, 0, 0]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def file_dataset(sop_class: str) -> FileDataset:
    """An empty dataset with File Meta for Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.StudyInstanceUID = STUDY_UID
    ds.StudyDate = "20240102"
    ds.AccessionNumber = "ACC42"
    ds.StudyDescription = "KNEE"
    ds.PatientID = "P001"
    ds.PatientName = "Doe^Jane"
    return ds


def set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store int16 pixels, shape (H, W) or (F, H, W)."""
    pixels = np.asarray(pixels, dtype=np.int16)
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = pixels.tobytes()


def write_slice(
    path: Path,
    *,
    value: int = 0,
    position: Sequence[float] | None = (0.0, 0.0, 0.0),
    orientation: Sequence[float] | None = AXIAL,
    series_uid: str = "1.2.826.0.1.3680043.8.498.10",
    series_number: int = 1,
    description: str = "T1 AX",
    instance: int = 1,
    size: tuple[int, int] = (8, 8),
    pixel_spacing: Sequence[float] | None = (0.5, 0.5),
    thickness: float | None = 3.0,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[object, object] | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "OTHER"),
) -> Path:
    """Write one single-frame MR slice whose pixels all equal ``value``; returns ``path``."""
    ds = file_dataset(MRImageStorage)
    ds.ImageType = list(image_type)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    set_pixels(ds, np.full(size, value, dtype=np.int16))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_stack(
    folder: Path,
    count: int,
    *,
    gap: float = 2.0,
    orientation: Sequence[float] = AXIAL,
    prefix: str = "slice",
    **kwargs: object,
) -> list[Path]:
    """Write ``count`` slices along the normal of ``orientation``, slice i has value i and position i*gap."""
    normal = np.cross(orientation[:3], orientation[3:])
    return [
        write_slice(
            folder / f"{prefix}{i:03d}.dcm",
            value=i,
            position=tuple(float(v) for v in normal * gap * i),
            orientation=orientation,
            instance=i + 1,
            **kwargs,  # type: ignore[arg-type]
        )
        for i in range(count)
    ]


def _item(**elements: object) -> Dataset:
    """A sequence item with the given elements."""
    item = Dataset()
    for keyword, value in elements.items():
        setattr(item, keyword, value)
    return item


def write_enhanced_mr(
    path: Path,
    positions: Sequence[Sequence[float]] | None,
    *,
    orientation: Sequence[float] = AXIAL,
    slopes: Sequence[float] | None = None,
    values: Sequence[int] | None = None,
    size: tuple[int, int] = (6, 6),
    pixel_spacing: Sequence[float] = (0.7, 0.8),
    series_uid: str = "1.2.826.0.1.3680043.8.498.20",
) -> Path:
    """Write an Enhanced MR multi-frame file with per-frame positions (None: no plane position at all).

    Frame i holds the value ``values[i]`` (default i) and, when given, RescaleSlope ``slopes[i]``.
    """
    n_frames = len(positions) if positions is not None else len(values or ())
    values = list(values) if values is not None else list(range(n_frames))
    ds = file_dataset(EnhancedMRImageStorage)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 7
    ds.SeriesDescription = "ENHANCED"
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n_frames
    shared = _item(
        PixelMeasuresSequence=DicomSequence(
            [_item(PixelSpacing=list(pixel_spacing), SliceThickness=9.0)]
        )
    )
    if positions is not None:
        shared.PlaneOrientationSequence = DicomSequence(
            [_item(ImageOrientationPatient=list(orientation))]
        )
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for i in range(n_frames):
        item = Dataset()
        if positions is not None:
            item.PlanePositionSequence = DicomSequence(
                [_item(ImagePositionPatient=[float(v) for v in positions[i]])]
            )
        if slopes is not None:
            item.PixelValueTransformationSequence = DicomSequence(
                [_item(RescaleSlope=slopes[i], RescaleIntercept=0, RescaleType="US")]
            )
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    set_pixels(ds, np.stack([np.full(size, v, dtype=np.int16) for v in values]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
