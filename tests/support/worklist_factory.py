"""Tiny DICOM studies and models for the worklist tests (helpers only; this module holds no tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import MRImageStorage, generate_uid
from support.dicom_factory import AXIAL, CORONAL, SAGITTAL, file_dataset, set_pixels

from napari_elnet.models.model_file import (
    LoadedModel,
    ModelInfo,
    build_model,
    load_model,
    save_model,
)

ORIENTATIONS: dict[str, tuple[float, ...]] = {
    "axial": AXIAL,
    "coronal": CORONAL,
    "sagittal": SAGITTAL,
}
PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-SECRET-7"


def write_dicom_slice(
    path: Path,
    *,
    study_uid: str | None,
    series_uid: str,
    plane: str = "axial",
    index: int = 0,
    accession: str = "",
    patient_name: str = PATIENT_NAME,
    patient_id: str = PATIENT_ID,
    pixels: np.ndarray | None = None,
    size: int = 32,
) -> Path:
    """One MR slice of ``plane`` at position ``index`` along the normal (pixels: noise by default)."""
    ds = file_dataset(MRImageStorage)
    del ds.StudyInstanceUID, ds.AccessionNumber  # this factory sets them per study
    if study_uid is not None:
        ds.StudyInstanceUID = study_uid
    if accession:
        ds.AccessionNumber = accession
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.StudyDate = "20240102"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1 + list(ORIENTATIONS).index(plane)
    ds.SeriesDescription = plane.upper()
    ds.InstanceNumber = index + 1
    orientation = ORIENTATIONS[plane]
    normal = np.cross(orientation[:3], orientation[3:])
    ds.ImagePositionPatient = [float(v) for v in normal * 3.0 * index]
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [0.5, 0.5]
    if pixels is None:
        rng = np.random.default_rng(index)
        pixels = rng.integers(0, 200, size=(size, size))
    set_pixels(ds, pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_dicom_study(
    folder: Path,
    study_uid: str | None,
    *,
    planes: Sequence[str] = ("axial",),
    slices: int = 3,
    accession: str = "",
    size: int = 32,
    bright: bool = False,
    prefix: str = "im",
) -> list[Path]:
    """A study of one series per plane in ``folder`` (a bright square in the middle when ``bright``)."""
    files = []
    for plane in planes:
        series_uid = generate_uid()
        for i in range(slices):
            rng = np.random.default_rng(i)
            pixels = rng.integers(20, 90, size=(size, size))
            if bright:
                pixels[size // 3 : size // 2, size // 3 : size // 2] = 800
            files.append(
                write_dicom_slice(
                    folder / f"{prefix}_{plane}_{i:03d}.dcm",
                    study_uid=study_uid,
                    series_uid=series_uid,
                    plane=plane,
                    index=i,
                    accession=accession,
                    pixels=pixels,
                )
            )
    return files


def make_models(folder: Path, specs: Sequence[tuple[str, str]], k: int = 1) -> list[LoadedModel]:
    """Randomly initialized k-wide models saved to and loaded from ``folder``; specs are (task, plane)."""
    models = []
    for seed, (task, plane) in enumerate(specs):
        info = ModelInfo(task=task, plane=plane, k=k)  # type: ignore[arg-type]
        path = save_model(folder / f"{task}_{plane}.pt", build_model(info, seed=seed), info)
        models.append(load_model(path))
    return models
