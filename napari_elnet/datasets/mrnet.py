"""The MRNet layout: ``{train,valid}/{axial,coronal,sagittal}/NNNN.npy`` + ``{split}-{task}.csv``."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.series import PLANES, Plane
from napari_elnet.datasets.base import Case, CaseDataset
from napari_elnet.datasets.labels_csv import read_case_labels
from napari_elnet.io.mrnet import NpyError, read_npy
from napari_elnet.models.tasks import MRNET_LABELS as TASKS

SPLITS: tuple[str, ...] = ("train", "valid")


def is_mrnet(root: Path) -> bool:
    """True when ``root`` holds at least one ``{split}-{task}.csv`` next to its split folder."""
    return any(
        (root / f"{split}-{task}.csv").is_file() and (root / split).is_dir()
        for split in SPLITS
        for task in TASKS
    )


def mrnet_tasks(root: Path) -> tuple[str, ...]:
    """Tasks with a label file for at least one split."""
    return tuple(t for t in TASKS if any((root / f"{s}-{t}.csv").is_file() for s in SPLITS))


def _load_npy(path: Path) -> np.ndarray:
    """One MRNet volume through the io reader: regular files only, header checked against the file
    size before allocation, numeric dtypes only (nothing is unpickled)."""
    try:
        return read_npy(path)
    except (OSError, NpyError) as exc:
        raise ElnetError(f"{path}: cannot read volume ({exc})") from exc


def _split_cases(root: Path, split: str, task: str, plane: Plane) -> list[Case]:
    labels_path = root / f"{split}-{task}.csv"
    if not labels_path.is_file():
        raise ConfigurationError(f"{labels_path}: label file not found (task {task!r}, {split})")
    folder = root / split / plane
    cases = []
    for case_id, label in read_case_labels(labels_path).items():
        path = folder / f"{case_id}.npy"
        if not path.is_file():
            raise ConfigurationError(
                f"{labels_path}: case {case_id} has no {plane} volume (missing {path})"
            )
        cases.append(Case(case_id, label, path, partial(_load_npy, path)))
    return cases


def read_mrnet(root: Path, task: str, plane: Plane, split: str | None = None) -> CaseDataset:
    """The cases of one split (``train`` or ``valid``), or of both in that order for None.

    Raises:
        ConfigurationError: unknown split, task or plane; missing label file or volume.
    """
    if split is not None and split not in SPLITS:
        raise ConfigurationError(f"MRNet split must be one of {SPLITS}, got {split!r}")
    if task not in TASKS:
        raise ConfigurationError(f"MRNet task must be one of {TASKS}, got {task!r}")
    if plane not in PLANES:
        raise ConfigurationError(f"plane must be one of {PLANES}, got {plane!r}")
    splits = [split] if split else [s for s in SPLITS if (root / f"{s}-{task}.csv").is_file()]
    cases = [case for s in splits for case in _split_cases(root, s, task, plane)]
    return CaseDataset(root, "mrnet", task, plane, split, tuple(cases))
