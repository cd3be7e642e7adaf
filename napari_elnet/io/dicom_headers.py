"""Reading one DICOM file: the header fields used for grouping and the decoded frames with their geometry.

Each file is read once on the fast path: ``dicom_pixels.decode`` parses the header up to the pixel
data, keeps only the elements in ``HEADER_TAGS``, checks the size the header declares and decodes the
pixels, so trailing bytes after the pixel data are never parsed. Files the fast path cannot handle (no
File Meta, no pixel data, damage) are read again in full by ``pydicom.dcmread`` to find out why; a
deflated file is inflated within its declared bound for both paths (``dicom_pixels.inflate_bounded``).

Only regular files are opened (``files.read_regular_file``): a FIFO, a device or a symlink to one is a
FileProblem, never a blocked or endless read.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import _at_pixel_data, read_dataset
from pydicom.tag import Tag

from napari_elnet.common.series import StudyInfo
from napari_elnet.io import dicom_pixels
from napari_elnet.io import dicom_values as values
from napari_elnet.io.files import describe_mode, os_reason
from napari_elnet.io.scan import FileProblem

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Derived objects that are not image series: parametric maps (heatmaps) and colour secondary
#: captures (key images, screen captures) are skipped like reports (napari_elnet.dicom reads them).
PARAMETRIC_MAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"
SECONDARY_CAPTURE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
#: MR image storage classes (MR, Enhanced MR): such an object without pixel data is damaged (a header
#: whose lengths no longer fit hides the pixel data), never a report to skip silently.
_MR_IMAGE_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"})
#: Other image storage classes (CT, Secondary Capture): without pixel data they are reported only when
#: parsing failed (pixel-stripped CT headers are common in test trees).
_IMAGE_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.7"})
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_HEADER_KEYWORDS = (
    "SOPClassUID", "ImageType", "Modality", "StudyDate", "AccessionNumber",
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
        slope: RescaleSlope (1 when absent or 0).
        intercept: RescaleIntercept (0 when absent).
        window: (WindowCenter, WindowWidth), first values, or None when absent or the width is not positive.
        groups: The frame's per-frame and the shared functional group items (None for classic files).
        header: The file's header (the elements in ``HEADER_TAGS``).
    """

    pixels: np.ndarray
    frame_index: int
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    window: tuple[float, float] | None
    groups: tuple[Dataset | None, Dataset | None]
    header: Dataset

    @property
    def slice_gap(self) -> float | None:
        """SpacingBetweenSlices, else SliceThickness (mm), or None when neither is positive."""
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            gap = lookup(self.header, self.groups, "PixelMeasuresSequence", keyword)
            if gap and gap[0] > 0:
                return gap[0]
        return None


@dataclass(frozen=True, eq=False)
class DicomImage:
    """The frames of one DICOM file and the header fields used to group them.

    Series-level fields (number, description, modality, study) are properties: they are only converted
    for the one file that describes a series.
    """

    path: Path
    header: Dataset
    series_uid: str
    instance_number: int | None
    localizer: bool
    multi_frame: bool
    frames: tuple[DicomFrame, ...]

    @property
    def series_number(self) -> int | None:
        """SeriesNumber, or None."""
        return values.integer(self.header, "SeriesNumber")

    @property
    def series_description(self) -> str:
        """SeriesDescription, or an empty string."""
        return values.text(self.header, "SeriesDescription")

    @property
    def modality(self) -> str:
        """Modality, or an empty string."""
        return values.text(self.header, "Modality")

    @property
    def study(self) -> StudyInfo:
        """Study and patient identity."""
        return StudyInfo(
            study_uid=values.text(self.header, "StudyInstanceUID"),
            accession_number=values.text(self.header, "AccessionNumber"),
            study_date=values.text(self.header, "StudyDate"),
            study_description=values.text(self.header, "StudyDescription"),
            patient_id=values.text(self.header, "PatientID"),
            patient_name=values.text(self.header, "PatientName"),
        )


def lookup(
    header: Dataset,
    groups: tuple[Dataset | None, Dataset | None],
    sequence: str,
    keyword: str,
    top_level: bool = True,
) -> tuple[float, ...] | None:
    """Numbers for one frame: from its per-frame functional group, else the shared one, else the top level.

    Args:
        header: The file's header.
        groups: The frame's per-frame functional group item and the shared item (either may be None).
        sequence: Functional group macro holding the value, e.g. "PlanePositionSequence".
        keyword: Element inside the macro (and at the top level), e.g. "ImagePositionPatient".
        top_level: Whether the top-level element may answer when no functional group does.

    Returns:
        The element's values, or None when absent or not numeric.
    """
    for group in groups:
        inner = values.sequence_items(group, sequence)
        if inner and keyword in inner[0]:
            return values.numbers(inner[0], keyword)
    return values.numbers(header, keyword) if top_level else None


#: Files up to this size are read into memory in one call (faster parsing); larger ones are memory-mapped.
_READ_WHOLE_BYTES = 64 * 2**20


def read_dicom_file(path: Path) -> DicomImage | FileProblem | None:
    """Read and decode one DICOM file.

    Args:
        path: A file believed to hold DICOM.

    Returns:
        The image; None for a DICOMDIR or an object without pixel data (a report, a plan, a
        presentation state); a FileProblem naming the reason when the file cannot be read or decoded
        (not a regular file, damaged, too large for its header, not decodable).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        return FileProblem(path, f"cannot be read: {os_reason(error)}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return FileProblem(path, f"{describe_mode(info.st_mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            if info.st_size <= _READ_WHOLE_BYTES:
                return _read(path, io.BytesIO(f.read()))
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return _read(path, mapped)  # type: ignore[arg-type]
    except OSError as error:
        return FileProblem(path, f"cannot be read: {os_reason(error)}")
    finally:
        os.close(fd)


def read_dicom_header(path: Path, keywords: Sequence[str]) -> Dataset:
    """The elements ``keywords`` (and the File Meta) of one DICOM file, without its pixel data.

    Bounded like :func:`read_dicom_file`: only a regular file is opened (non-blocking), and a deflated
    dataset is inflated at most to the size its header declares. Values are left unconverted (read
    them through :mod:`napari_elnet.io.dicom_values`).

    Raises:
        OSError: not a regular file, or unreadable.
        dicom_pixels.PixelBoundError: a deflate bomb.
        Exception: pydicom's errors for a damaged header.
    """
    tags = [int(Tag(keyword)) for keyword in keywords]
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{describe_mode(info.st_mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged headers warn on every element
            meta, stream, syntax = dicom_pixels.open_dataset(handle)
            if syntax is None or not syntax.is_transfer_syntax:  # let pydicom detect the encoding
                handle.seek(0)
                return pydicom.dcmread(
                    handle, force=True, stop_before_pixels=True, specific_tags=tags
                )
            ds = read_dataset(
                stream,
                is_implicit_VR=syntax.is_implicit_VR,
                is_little_endian=syntax.is_little_endian,
                stop_when=_at_pixel_data,
                specific_tags=tags,
            )
            ds.file_meta = meta
            return ds
    finally:
        os.close(fd)


def _read(path: Path, source: BinaryIO) -> DicomImage | FileProblem | None:
    """The fast path, then the slow path when the fast one fails; pydicom's warnings are silenced
    (a damaged header warns on every element; the FileProblem says what matters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            header, pixels = dicom_pixels.decode(source, list(HEADER_TAGS))
        except dicom_pixels.PixelBoundError as error:
            return FileProblem(path, f"pixel data cannot be decoded: {error}")
        except dicom_pixels.NotDecodableHereError:
            return _read_slowly(path, source, damaged=False)
        except Exception:  # any other failure: read it the slow way to learn why
            return _read_slowly(path, source, damaged=True)
        if not isinstance(source, io.BytesIO):  # a view into a memory map closed after reading
            pixels = np.array(pixels)
        return _image_from(path, header, pixels)


def _read_slowly(path: Path, source: BinaryIO, damaged: bool) -> DicomImage | FileProblem | None:
    """Full ``dcmread`` of a file the fast path could not handle.

    ``damaged``: the fast path failed while parsing (not merely "no File Meta" or "no pixel data"); an
    image object that then shows no pixel data is reported, not skipped as a non-image object.
    """
    try:
        meta, stream, syntax = dicom_pixels.open_dataset(source)
    except dicom_pixels.PixelBoundError as error:
        return FileProblem(path, f"pixel data cannot be decoded: {error}")
    except Exception:  # a damaged File Meta: let dcmread say why
        meta, stream, syntax = pydicom.dataset.FileMetaDataset(), source, None
    try:
        if syntax is not None and stream is not source:  # inflated within bounds
            ds = pydicom.dcmread(stream, force=True)
            ds.file_meta = meta
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            source.seek(0)
            ds = pydicom.dcmread(source, force=True, defer_size="64 KB")
    except Exception as error:  # pydicom raises many types for damaged files
        return FileProblem(path, f"not a readable DICOM file: {_describe(error)}")
    file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
    sop_class = values.text(file_meta, "MediaStorageSOPClassUID") or values.text(ds, "SOPClassUID")
    if sop_class == DICOMDIR_SOP_CLASS:
        return None
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        if sop_class in _MR_IMAGE_CLASSES or (damaged and sop_class in _IMAGE_CLASSES):
            return FileProblem(path, "no pixel data found in an image object (damaged file?)")
        if sop_class:
            return None
        return FileProblem(path, "not a DICOM file: no DICOM header or pixel data found")
    try:
        syntax = dicom_pixels.transfer_syntax_of(ds)
        ds.file_meta = file_meta
        ds.file_meta.TransferSyntaxUID = syntax
    except Exception as error:  # a damaged transfer syntax value
        return FileProblem(path, f"transfer syntax cannot be read: {_describe(error)}")
    syntax_name = getattr(syntax, "name", "unknown transfer syntax")
    try:
        dicom_pixels.check_dataset(ds)
        pixels = ds.pixel_array
    except dicom_pixels.PixelBoundError as error:
        return FileProblem(path, f"pixel data cannot be decoded: {error}")
    except Exception as error:  # decoders raise many types
        return FileProblem(
            path, f"pixel data cannot be decoded ({syntax_name}): {_describe(error)}"
        )
    return _image_from(path, ds, pixels)


def _describe(error: Exception) -> str:
    """One line naming an exception's type and message.

    A message whose first line ends in ``:`` keeps the lines after it, joined by ``; ``: pydicom
    says ``Unable to decode as exceptions were raised by all available plugins:`` and then one line
    per decoder with its reason (``pillow: Pillow does not support 'JPEG Extended' for samples with
    12-bit precision``), the only part that tells the user what is wrong.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    message = lines[0]
    if message.endswith(":") and len(lines) > 1:
        message = f"{message} {'; '.join(line[:200] for line in lines[1:5])}"
    return f"{type(error).__name__}: {message}"


def _image_from(path: Path, ds: Dataset, pixels: np.ndarray) -> DicomImage | FileProblem | None:
    """Split decoded pixels into frames and attach the per-frame geometry (None: a derived object)."""
    samples = values.integer(ds, "SamplesPerPixel") or 1
    sop_class = values.text(ds, "SOPClassUID")
    if sop_class == PARAMETRIC_MAP_SOP_CLASS or (
        sop_class == SECONDARY_CAPTURE_SOP_CLASS and samples != 1
    ):
        return None
    if samples != 1:
        photometric = values.text(ds, "PhotometricInterpretation") or "?"
        return FileProblem(
            path,
            f"colour image ({photometric}, {samples} samples per pixel): only greyscale is loaded",
        )
    multi_frame = "NumberOfFrames" in ds
    n_frames = (values.integer(ds, "NumberOfFrames") or 1) if multi_frame else 1
    stack = pixels.reshape((1, *pixels.shape)) if pixels.ndim == 2 else pixels
    if stack.ndim != 3 or stack.shape[0] != n_frames:
        return FileProblem(
            path, f"pixel array of shape {pixels.shape} does not match NumberOfFrames={n_frames}"
        )
    per_frame = values.sequence_items(ds, "PerFrameFunctionalGroupsSequence") if multi_frame else []
    shared_seq = values.sequence_items(ds, "SharedFunctionalGroupsSequence") if multi_frame else []
    shared = shared_seq[0] if shared_seq else None
    frames = tuple(
        _frame(
            ds,
            stack[i],
            i,
            multi_frame,
            per_frame[i] if i < len(per_frame) else None,
            shared,
        )
        for i in range(n_frames)
    )
    image_type = [code.upper() for code in values.codes(ds, "ImageType")]
    return DicomImage(
        path=path,
        header=ds,
        series_uid="".join(values.codes(ds, "SeriesInstanceUID")),
        instance_number=values.integer(ds, "InstanceNumber"),
        localizer="LOCALIZER" in image_type,
        multi_frame=multi_frame,
        frames=frames,
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
    groups = (item, shared)

    def find(sequence: str, keyword: str, top_level: bool = True) -> tuple[float, ...] | None:
        return lookup(ds, groups, sequence, keyword, top_level)

    position = find("PlanePositionSequence", "ImagePositionPatient", not multi_frame)
    orientation = find("PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = find("PixelMeasuresSequence", "PixelSpacing")
    center = find("FrameVOILUTSequence", "WindowCenter")
    width = find("FrameVOILUTSequence", "WindowWidth")
    slope = find("PixelValueTransformationSequence", "RescaleSlope")
    intercept = find("PixelValueTransformationSequence", "RescaleIntercept")
    return DicomFrame(
        pixels=pixels,
        frame_index=index,
        position=position if position and len(position) == 3 else None,
        orientation=orientation if orientation and len(orientation) == 6 else None,
        pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 else None,
        slope=slope[0] if slope and slope[0] != 0 else 1.0,
        intercept=intercept[0] if intercept else 0.0,
        window=(center[0], width[0]) if center and width and width[0] > 0 else None,
        groups=groups,
        header=ds,
    )
