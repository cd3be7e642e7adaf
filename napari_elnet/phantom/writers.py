"""Writers of phantom data sets: MRNet layout (.npy + CSV) and DICOM study folders (+ truth JSON)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series
from napari_elnet.phantom.interpolation import resize_antialiased
from napari_elnet.phantom.study import (
    PLANE_ORDER,
    TASKS,
    PhantomConfig,
    PhantomStudy,
    generate_study,
)

MRNET_SIZE = 256
MRNET_PERCENTILE = 99.5
"""MRNet's uint8 volumes reach 255 at this percentile of each series (the clip that
:data:`napari_elnet.transforms.preprocess.BRIGHT_PERCENTILE` repeats on scanner series; a test
checks that the two agree, so that the phantom does not import the preprocessing)."""
DICOM_DIRS = {"sagittal": "sag", "coronal": "cor", "axial": "ax"}
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def studies(n: int, seed: int, config: PhantomConfig | None = None) -> Iterator[PhantomStudy]:
    """``n`` studies with seeds derived from ``seed`` (study i uses ``seed * 100003 + i``)."""
    if n < 1:
        raise ConfigurationError(f"n must be >= 1, got {n}")
    for i in range(n):
        yield generate_study(seed * 100003 + i, config)


def to_mrnet_volume(series: Series) -> np.ndarray:
    """A stack as MRNet stores it: uint8, (S, 256, 256), 0..255 up to the 99.5th percentile.

    Slices are shrunk (or enlarged) with an antialiased bilinear filter, PyTorch's
    ``interpolate(..., mode="bilinear", antialias=True)`` (same values, NumPy only).
    """
    resized = resize_antialiased(series.array, (MRNET_SIZE, MRNET_SIZE))
    high = float(np.percentile(resized, MRNET_PERCENTILE)) or 1.0
    return np.clip(resized / high * 255.0, 0, 255).astype(np.uint8)


def _scaled_truth(study: PhantomStudy, plane: str) -> list[dict[str, object]]:
    """A plane's lesion truth with boxes rescaled to the 256 x 256 MRNet grid."""
    h, w = study.series[plane].shape[1:]
    out: list[dict[str, object]] = []
    for item in study.truth[plane]:
        s0, s1, r0, r1, c0, c1 = item.box
        sr, sc = MRNET_SIZE / h, MRNET_SIZE / w
        box = [s0, s1, int(r0 * sr), min(int(r1 * sr), 255), int(c0 * sc), min(int(c1 * sc), 255)]
        out.append({"kind": item.kind, "slices": [s0, s1], "box": box})
    return out


def write_mrnet(
    out_dir: str | Path,
    n: int,
    seed: int,
    config: PhantomConfig | None = None,
    valid_fraction: float = 0.2,
) -> Path:
    """Write ``n`` studies in the MRNet layout: ``{train,valid}/{plane}/NNNN.npy`` and
    ``{split}-{task}.csv``; cases are numbered 0000.. across both splits (valid cases last), and
    ``truth.json`` maps each case to its labels and per-plane lesion slices and boxes."""
    if not 0.0 <= valid_fraction <= 1.0:
        raise ConfigurationError(f"valid_fraction must be in [0, 1], got {valid_fraction}")
    root = Path(out_dir)
    n_valid = round(n * valid_fraction)
    rows: dict[str, list[tuple[str, dict[str, int]]]] = {"train": [], "valid": []}
    truth = {}
    for index, study in enumerate(studies(n, seed, config)):
        split = "valid" if index >= n - n_valid else "train"
        case = f"{index:04d}"
        for plane in PLANE_ORDER:
            folder = root / split / plane
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{case}.npy", to_mrnet_volume(study.series[plane]))
        rows[split].append((case, study.labels))
        truth[case] = {
            "split": split,
            "labels": study.labels,
            "lesions": list(study.lesions),
            "planes": {p: _scaled_truth(study, p) for p in PLANE_ORDER},
        }
    for split, items in rows.items():
        if not items:
            continue
        for task in TASKS:
            with (root / f"{split}-{task}.csv").open("w", newline="") as handle:
                csv.writer(handle).writerows((case, labels[task]) for case, labels in items)
    (root / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return root


def _dicom_slice(series: Series, index: int, study: PhantomStudy, plane: str):
    """One MR Image Storage dataset for slice ``index`` of a stack."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    info = series.study
    sop_uid = UID(f"{series.uid}.{index + 1}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MR_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = info.study_uid, series.uid
    ds.FrameOfReferenceUID = f"{info.study_uid}.1"
    ds.Modality, ds.ImageType = "MR", ["ORIGINAL", "PRIMARY"]
    ds.PatientName, ds.PatientID = info.patient_name, info.patient_id
    ds.AccessionNumber, ds.StudyDate = info.accession_number, info.study_date
    ds.StudyDescription, ds.SeriesDescription = info.study_description, series.description
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", series.number, index + 1
    ds.BodyPartExamined = "KNEE"
    orientation = series.orientation
    if orientation is None:
        raise ConfigurationError(f"{series.name}: a phantom stack always has an orientation")
    position = np.asarray(series.origin) + index * series.spacing[0] * orientation[2]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*orientation[0], *orientation[1])]
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    ds.SliceLocation = f"{float(position @ orientation[2]):.4f}"
    ds.PixelSpacing = [f"{series.spacing[1]:.6f}", f"{series.spacing[2]:.6f}"]
    ds.SliceThickness = f"{min(series.spacing[0], 4.0):.3f}"
    ds.SpacingBetweenSlices = f"{series.spacing[0]:.4f}"
    pixels = np.clip(np.round(series.array[index]), 0, 65535).astype(np.uint16)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
    if series.window:
        ds.WindowCenter, ds.WindowWidth = f"{series.window[0]:.1f}", f"{series.window[1]:.1f}"
    ds.PixelData = pixels.tobytes()
    return ds


def write_dicom_study(study: PhantomStudy, out_dir: str | Path) -> Path:
    """Write one study as DICOM: ``out_dir/{sag,cor,ax}/IM0001.dcm...`` plus ``truth.json``."""
    root = Path(out_dir)
    for plane in PLANE_ORDER:
        series = study.series[plane]
        folder = root / DICOM_DIRS[plane]
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(series.shape[0]):
            _dicom_slice(series, index, study, plane).save_as(
                folder / f"IM{index + 1:04d}.dcm", enforce_file_format=True
            )
    (root / "truth.json").write_text(study.to_json() + "\n")
    return root


def write_dicom_dataset(
    out_dir: str | Path, n: int, seed: int, config: PhantomConfig | None = None
) -> Path:
    """Write ``n`` DICOM studies ``case_NNNN/`` and a ``labels.csv`` (case,abnormal,acl,meniscus)."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, study in enumerate(studies(n, seed, config)):
        case = f"case_{index:04d}"
        write_dicom_study(study, root / case)
        rows.append([case, *(study.labels[task] for task in TASKS)])
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", *TASKS])
        writer.writerows(rows)
    return root


def main_phantom(out: Path, n: int, fmt: str, seed: int) -> Path:
    """The ``napari-elnet phantom`` command: write ``n`` studies in format ``mrnet`` or ``dicom``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigurationError(f"{out}: folder exists and is not empty")
    if fmt == "mrnet":
        return write_mrnet(out, n, seed)
    if fmt == "dicom":
        return write_dicom_dataset(out, n, seed)
    raise ConfigurationError(f"unknown format {fmt!r}; expected 'mrnet' or 'dicom'")
