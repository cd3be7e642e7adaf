"""DICOM study folders with a label table: ``ROOT/labels.csv`` (``case,<task>...``) + ``ROOT/<case>/``.

Each case folder is read with :func:`napari_elnet.io.load_study`, and the series of the wanted plane
is picked with :func:`napari_elnet.common.series.choose_series` (the one prediction uses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.series import PLANES, Plane, Series, choose_series
from napari_elnet.datasets.base import Case, CaseDataset
from napari_elnet.datasets.labels_csv import parse_label, read_label_table

LABELS = "labels.csv"
StudyLoader = Callable[[Path], Sequence[Series]]


def is_dicom_table(root: Path) -> bool:
    """True when ``root`` holds a ``labels.csv``."""
    return (root / LABELS).is_file()


def dicom_tasks(root: Path, labels: Path | None = None) -> tuple[str, ...]:
    """The task columns of the label table."""
    return tuple(read_label_table(labels or root / LABELS)[0])


def _default_loader(folder: Path) -> Sequence[Series]:
    from napari_elnet.io import load_study

    return load_study(folder)


def _plane_volume(folder: Path, plane: Plane, loader: StudyLoader) -> np.ndarray:
    """The chosen series of ``plane`` in a case folder; ElnetError naming the folder if none."""
    series = list(loader(folder))
    index = choose_series(series, plane)
    if index is None:
        found = ", ".join(f"{s.plane} ({s.shape[0]} slices)" for s in series) or "no series"
        raise ElnetError(f"{folder}: no {plane} series with enough slices (found {found})")
    return series[index].array


def read_dicom_table(
    root: Path,
    task: str,
    plane: Plane,
    labels: Path | None = None,
    loader: StudyLoader | None = None,
) -> CaseDataset:
    """The cases listed in the label table, in table order.

    Args:
        root: Folder of case folders.
        task: A task column of the table.
        plane: Plane of the series to read from each case.
        labels: The label table; ``root/labels.csv`` by default.
        loader: Reads a case folder's series (default :func:`napari_elnet.io.load_study`).

    Raises:
        ConfigurationError: missing task column, bad row, or missing case folder.
    """
    if plane not in PLANES:
        raise ConfigurationError(f"plane must be one of {PLANES}, got {plane!r}")
    labels = labels or root / LABELS
    tasks, records = read_label_table(labels)
    if task not in tasks:
        raise ConfigurationError(f"{labels}: no column for task {task!r} (columns: {tasks})")
    loader = loader or _default_loader
    cases, seen = [], set()
    for line, record in enumerate(records, start=2):
        case_id = record["case"]
        folder = root / case_id
        if not case_id or case_id in seen or Path(case_id).name != case_id:
            raise ConfigurationError(f"{labels}: line {line}: bad or repeated case {case_id!r}")
        if not folder.is_dir():
            raise ConfigurationError(f"{labels}: line {line}: case folder {folder} not found")
        seen.add(case_id)
        label = parse_label(record[task], labels, line, task)
        cases.append(Case(case_id, label, folder, partial(_plane_volume, folder, plane, loader)))
    if not cases:
        raise ConfigurationError(f"{labels}: no cases")
    return CaseDataset(root, "dicom", task, plane, None, tuple(cases))
