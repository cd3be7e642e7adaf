"""Seed inputs for the fuzzer: small valid files built in memory, plus real scanner files when present.

Every seed is ``(name, bytes)``; names carry the suffix the loaders look at. Generation is
deterministic, so a worker and a later reproduction build the same seeds.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_STUDY_UID = "1.2.826.0.1.3680043.8.498.77"
_SERIES_UID = "1.2.826.0.1.3680043.8.498.78"


@dataclass(frozen=True)
class Seeds:
    """Seed inputs by kind: ``dicom`` (single files), ``stacks`` (lists of files of one series),
    ``npy``, ``model``, ``pickle``."""

    dicom: tuple[tuple[str, bytes], ...]
    stacks: tuple[tuple[tuple[str, bytes], ...], ...]
    npy: tuple[tuple[str, bytes], ...]
    model: tuple[tuple[str, bytes], ...]
    pickle: tuple[tuple[str, bytes], ...]


def mr_slice(
    index: int = 0,
    size: tuple[int, int] = (16, 16),
    position: tuple[float, float, float] | None = None,
) -> FileDataset:
    """One MR slice (int16, explicit VR little endian) with full geometry; pixel values vary."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.79.{index + 1}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyInstanceUID = _STUDY_UID
    ds.SeriesInstanceUID = _SERIES_UID
    ds.SeriesNumber = 3
    ds.SeriesDescription = "PD SAG"
    ds.PatientName = "Fuzz^Seed"
    ds.PatientID = "F1"
    ds.StudyDate = "20240101"
    ds.InstanceNumber = index + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ImagePositionPatient = list(position or (float(index) * 3.0, -50.0, 40.0))
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 3.0
    ds.SpacingBetweenSlices = 3.0
    ds.RescaleSlope = 1.0
    ds.RescaleIntercept = 0.0
    ds.WindowCenter = 300
    ds.WindowWidth = 600
    pixels = (np.arange(size[0] * size[1], dtype=np.int16).reshape(size) * (index + 1)) % 900
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 1
    ds.PixelData = pixels.astype(np.int16).tobytes()
    return ds


def _item(**elements: object) -> Dataset:
    item = Dataset()
    for keyword, value in elements.items():
        setattr(item, keyword, value)
    return item


def enhanced_mr(frames: int = 3, size: tuple[int, int] = (12, 12)) -> FileDataset:
    """An Enhanced MR multi-frame file with per-frame positions and rescale."""
    ds = mr_slice(0, size)
    ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    ds.SOPClassUID = EnhancedMRImageStorage
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    ds.NumberOfFrames = frames
    ds.SharedFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                PixelMeasuresSequence=DicomSequence(
                    [_item(PixelSpacing=[0.7, 0.7], SliceThickness=2.0)]
                ),
                PlaneOrientationSequence=DicomSequence(
                    [_item(ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])]
                ),
            )
        ]
    )
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                PlanePositionSequence=DicomSequence(
                    [_item(ImagePositionPatient=[0.0, 0.0, 2.0 * i])]
                ),
                PixelValueTransformationSequence=DicomSequence(
                    [_item(RescaleSlope=1.0 + i, RescaleIntercept=0.0, RescaleType="US")]
                ),
            )
            for i in range(frames)
        ]
    )
    pixels = np.stack([np.full(size, 10 * i, dtype=np.int16) for i in range(frames)])
    ds.PixelData = pixels.tobytes()
    return ds


def dicom_bytes(
    ds: Dataset, implicit: bool = False, little: bool = True, meta: bool = True
) -> bytes:
    """A dataset written as a file (with or without File Meta and preamble)."""
    out = io.BytesIO()
    if meta:
        ds.save_as(out, enforce_file_format=True)
    else:
        copy = pydicom.dcmread(io.BytesIO(dicom_bytes(ds)))
        copy.file_meta = FileMetaDataset()
        copy.preamble = None
        copy.save_as(out, implicit_vr=implicit, little_endian=little, enforce_file_format=False)
    return out.getvalue()


def _with_syntax(ds: FileDataset, syntax: str) -> FileDataset:
    copy = pydicom.dcmread(io.BytesIO(dicom_bytes(ds)))
    copy.file_meta.TransferSyntaxUID = syntax
    return copy


def _big_endian(ds: FileDataset) -> bytes:
    copy = pydicom.dcmread(io.BytesIO(dicom_bytes(ds)))
    copy.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    copy.PixelData = np.frombuffer(copy.PixelData, dtype="<i2").astype(">i2").tobytes()
    out = io.BytesIO()
    pydicom.dcmwrite(out, copy, implicit_vr=False, little_endian=False, force_encoding=True)
    return out.getvalue()


def _generated_dicom() -> list[tuple[str, bytes]]:
    base = mr_slice(0)
    seeds = [
        ("explicit_little.dcm", dicom_bytes(base)),
        ("implicit_little.dcm", dicom_bytes(_with_syntax(base, ImplicitVRLittleEndian))),
        ("explicit_big.dcm", _big_endian(base)),
        ("deflated.dcm", dicom_bytes(_with_syntax(base, DeflatedExplicitVRLittleEndian))),
        ("enhanced.dcm", dicom_bytes(enhanced_mr())),
        (
            "acrnema.dcm",
            dicom_bytes(base, implicit=True, meta=False),
        ),  # ACR-NEMA style, no preamble
    ]
    rle = mr_slice(1)
    rle.compress(RLELossless, encoding_plugin="pydicom")
    seeds.append(("rle.dcm", dicom_bytes(rle)))
    return seeds


def _shared_dicom() -> list[tuple[str, bytes]]:
    """Real scanner files from ../shared/data (a few per folder), or none when absent."""
    chosen: list[Path] = []
    for folder, limit in (
        ("encodings", 20),
        ("brain_pd_axial_oblique", 3),
        ("knee_dess_sagittal", 2),
    ):
        chosen.extend(sorted((SHARED_DATA / folder).glob("*.dcm"))[:limit])
    return [(f"shared_{p.parent.name}_{p.name}", p.read_bytes()) for p in chosen if p.is_file()]


def _npy_seeds() -> list[tuple[str, bytes]]:
    arrays = {
        "0001.npy": np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16),
        "0002.npy": np.arange(3 * 8 * 8, dtype=np.int16).reshape(3, 8, 8),
        "0003.npy": np.arange(64, dtype=np.uint8).reshape(8, 8),
        "0004.npy": np.asfortranarray(np.linspace(0, 1, 2 * 8 * 8).reshape(2, 8, 8)),
        "0005.npy": np.arange(2 * 8 * 8, dtype=">i2").reshape(2, 8, 8),
    }
    seeds = []
    for name, array in arrays.items():
        out = io.BytesIO()
        np.save(out, array)
        seeds.append((name, out.getvalue()))
    return seeds


def _model_seeds() -> list[tuple[str, bytes]]:
    import torch

    from napari_elnet.models.model_file import ModelInfo, build_model, save_model
    from napari_elnet.transforms.intensity import Landmarks

    info = ModelInfo(
        task="acl",
        plane="sagittal",
        k=1,
        landmarks=Landmarks((1.0, 50.0, 99.0), (0.0, 0.5, 1.0)),
        summary="fuzz seed",
        metrics={"roc_auc": 0.5},
        history=[{"epoch": 1.0, "loss": 0.7}],
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / "seed.pt", build_model(info, seed=1), info)
        data = path.read_bytes()
    del torch
    return [("seed.pt", data)]


def _pickle_seeds() -> list[tuple[str, bytes]]:
    volume = (np.arange(3 * 20 * 20) % 500).astype(np.uint16).reshape(3, 20, 20)
    seeds = [(f"vol_p{p}.pck", pickle.dumps(volume, protocol=p)) for p in (0, 2, 4, 5)]
    seeds.append(("float_p2.pck", pickle.dumps(np.linspace(0, 1, 12).reshape(3, 4), protocol=2)))
    seeds.append(("scalar_p2.pck", pickle.dumps(np.float32(3.5), protocol=2)))
    return seeds


def build_seeds(shared: bool = True) -> Seeds:
    """All seeds (``shared``: include ../shared/data files when that folder exists)."""
    dicom = _generated_dicom() + (_shared_dicom() if shared else [])
    stack = tuple((f"s{i:02d}.dcm", dicom_bytes(mr_slice(i))) for i in range(3))
    return Seeds(
        dicom=tuple(dicom),
        stacks=(stack,),
        npy=tuple(_npy_seeds()),
        model=tuple(_model_seeds()),
        pickle=tuple(_pickle_seeds()),
    )
