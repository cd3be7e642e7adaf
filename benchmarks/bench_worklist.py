"""Worklist benchmark: studies per minute for load only, compute only, and the overlapped pipeline.

Generates (in a temporary folder outside the repository) N three-plane DICOM studies of about 32 slices
per plane: with ``napari_elnet.phantom`` when it is installed, else simple synthetic pydicom studies
(the output says which). Then measures, on this machine:

- load only: ``discover_studies`` + ``load_study_ref`` of every study (no models);
- compute only: ``run_triage`` of every model on the preloaded series (no disk);
- overlapped: the real pipeline, ``run_worklist`` with its prefetch thread, writing a CSV report;

and prints the ratio overlapped time / max(load time, compute time) (target <= 1.2).
Models: the shipped default models when present, else randomly initialized k=4 models for acl
(axial, layer norm), meniscus (coronal, contrast norm) and abnormal (axial, layer norm).

Usage: ``python benchmarks/bench_worklist.py [--studies 12] [--slices 32] [--size 256]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_elnet.inference.triage import run_triage
from napari_elnet.models.defaults import load_default_models
from napari_elnet.models.model_file import (
    LoadedModel,
    ModelInfo,
    build_model,
    load_model,
    save_model,
)
from napari_elnet.worklist import (
    WorklistConfig,
    discover_studies,
    load_study_ref,
    run_worklist,
)

PLANES = {
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
}


def write_synthetic_study(folder: Path, index: int, slices: int, size: int) -> None:
    """One study: a series per plane of ``slices`` int16 slices (noise plus a bright disc)."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    rng = np.random.default_rng(index)
    study_uid = generate_uid()
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    for number, (plane, orientation) in enumerate(PLANES.items(), start=1):
        series_uid = generate_uid()
        normal = np.cross(orientation[:3], orientation[3:])
        for i in range(slices):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
            ds.Modality, ds.StudyInstanceUID, ds.AccessionNumber = "MR", study_uid, f"B{index:04d}"
            ds.PatientName, ds.PatientID = f"Bench^{index}", f"B{index}"
            ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, number
            ds.SeriesDescription, ds.InstanceNumber = plane.upper(), i + 1
            ds.ImagePositionPatient = [float(v) for v in normal * 3.0 * i]
            ds.ImageOrientationPatient = list(orientation)
            ds.PixelSpacing = [0.5, 0.5]
            pixels = rng.integers(0, 300, size=(size, size)) + 900 * disc
            ds.Rows, ds.Columns = size, size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = pixels.astype(np.int16).tobytes()
            path = folder / f"study{index:04d}" / plane / f"IM{i:04d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)


def generate(root: Path, studies: int, slices: int, size: int) -> str:
    """Write the studies; returns a description of the generator used."""
    try:
        from napari_elnet.phantom import write_dicom_dataset
    except ImportError:
        for index in range(studies):
            write_synthetic_study(root, index, slices, size)
        return (
            f"synthetic pydicom studies (napari_elnet.phantom not available): {slices} slices of "
            f"{size}x{size} per plane"
        )
    write_dicom_dataset(root, studies, 0)
    return "napari_elnet.phantom.write_dicom_dataset(seed 0)"


def bench_models(folder: Path) -> tuple[list[LoadedModel], str]:
    """The default models, else random k=4 models saved to ``folder``."""
    models = load_default_models()
    if models:
        return models, "shipped default models"
    specs = (
        ("acl", "axial", "layer"),
        ("meniscus", "coronal", "contrast"),
        ("abnormal", "axial", "layer"),
    )
    for seed, (task, plane, norm) in enumerate(specs):
        info = ModelInfo(task=task, plane=plane, k=4, norm=norm)  # type: ignore[arg-type]
        save_model(folder / f"{task}.pt", build_model(info, seed=seed), info)
        models.append(load_model(folder / f"{task}.pt"))
    return models, "randomly initialized k=4 models (no default models ship yet)"


def per_minute(count: int, seconds: float) -> float:
    """Studies per minute."""
    return 60.0 * count / seconds if seconds > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--prefetch", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-worklist-") as tmp:
        work = Path(tmp)
        root, out = work / "root", work / "out"
        start = time.perf_counter()
        source = generate(root, args.studies, args.slices, args.size)
        print(
            f"data: {args.studies} studies, {source} ({time.perf_counter() - start:.1f} s to write)"
        )
        models, model_source = bench_models(work)
        print(
            f"models: {model_source}; torch {torch.__version__}, {torch.get_num_threads()} threads"
        )

        start = time.perf_counter()
        discovery = discover_studies(root)
        loaded = [load_study_ref(ref) for ref in discovery.studies]
        load_s = time.perf_counter() - start
        n = len(loaded)
        slices = sum(s.shape[0] for series in loaded for s in series) / max(n, 1)

        run_triage(loaded[0], models, device="cpu")  # warm-up (first-call allocations)
        start = time.perf_counter()
        for series in loaded:
            run_triage(series, models, device="cpu")
        compute_s = time.perf_counter() - start
        del loaded

        config = WorklistConfig(device="cpu", prefetch=args.prefetch, report=out / "report.csv")
        start = time.perf_counter()
        report = run_worklist(root, models, config)
        overlap_s = time.perf_counter() - start
        errors = sum(r.status == "error" for r in report.results)

    bound = max(load_s, compute_s)
    print(
        f"{n} studies, {slices:.0f} slices per study on average, {len(models)} models, {errors} errors"
    )
    print("| pass | seconds | studies/min |")
    print("|---|---|---|")
    print(f"| load only (discover + read) | {load_s:.2f} | {per_minute(n, load_s):.1f} |")
    print(f"| compute only (preloaded series) | {compute_s:.2f} | {per_minute(n, compute_s):.1f} |")
    print(
        f"| overlapped (run_worklist, prefetch {args.prefetch}) | {overlap_s:.2f} | {per_minute(n, overlap_s):.1f} |"
    )
    print(
        f"| load + compute (serial sum) | {load_s + compute_s:.2f} | {per_minute(n, load_s + compute_s):.1f} |"
    )
    print(f"overlapped / max(load, compute) = {overlap_s / bound:.2f}x (target <= 1.2x)")
    print(
        f"inside the pipeline: loader busy {report.load_seconds:.2f} s, compute {report.compute_seconds:.2f} s, "
        f"compute waited for the loader {report.wait_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
