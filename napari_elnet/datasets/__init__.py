"""Labelled training and evaluation data in the layouts users already have.

Every reader returns a :class:`CaseDataset`: a sequence of :class:`Case` (``case_id``, ``label``,
lazy ``volume()``) for one task and plane. Readers only read: nothing is written into a data folder.
"""

from __future__ import annotations

from pathlib import Path

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Plane
from napari_elnet.datasets.base import Case, CaseDataset, subset
from napari_elnet.datasets.dicom import dicom_tasks, is_dicom_table, read_dicom_table
from napari_elnet.datasets.kneemri import PLANE as KNEEMRI_PLANE
from napari_elnet.datasets.kneemri import TASKS as KNEEMRI_TASKS
from napari_elnet.datasets.kneemri import KneeMriPositive, is_kneemri, read_kneemri
from napari_elnet.datasets.mrnet import is_mrnet, mrnet_tasks, read_mrnet
from napari_elnet.models.tasks import paper_choice
from napari_elnet.nn.norm_kinds import NormKind

LAYOUTS: tuple[str, ...] = ("mrnet", "kneemri", "dicom")

__all__ = [
    "LAYOUTS",
    "Case",
    "CaseDataset",
    "dataset_tasks",
    "default_choice",
    "detect_layout",
    "open_dataset",
    "subset",
]


def detect_layout(path: str | Path) -> str:
    """``mrnet``, ``kneemri`` or ``dicom`` for a data folder; ConfigurationError if none fits."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigurationError(f"{root}: data set folder not found")
    if is_mrnet(root):
        return "mrnet"
    if is_kneemri(root):
        return "kneemri"
    if is_dicom_table(root):
        return "dicom"
    raise ConfigurationError(
        f"{root}: unknown data set layout (expected MRNet train-<task>.csv + train/<plane>/, "
        "KneeMRI metadata.csv, or labels.csv with one DICOM folder per case)"
    )


def default_choice(layout: str | None, task: str) -> tuple[Plane, NormKind]:
    """Default plane and normalization to train ``task`` on data of ``layout``.

    The paper's choice (:func:`napari_elnet.models.tasks.paper_choice`), on the one plane a layout
    has when it has only one (KneeMRI: sagittal).
    """
    plane, norm = paper_choice(task)
    return (KNEEMRI_PLANE if layout == "kneemri" else plane), norm


def dataset_tasks(path: str | Path) -> tuple[str, ...]:
    """The tasks a data folder has labels for."""
    root = Path(path)
    layout = detect_layout(root)
    if layout == "mrnet":
        return mrnet_tasks(root)
    if layout == "kneemri":
        return KNEEMRI_TASKS
    return dicom_tasks(root)


def default_split(path: str | Path, purpose: str) -> str | None:
    """MRNet's ``train``/``valid`` split for purpose ``train``/``evaluate``; None for other layouts."""
    if detect_layout(path) != "mrnet":
        return None
    return "valid" if purpose == "evaluate" else "train"


def open_dataset(
    path: str | Path,
    task: str,
    plane: Plane,
    split: str | None = None,
    kneemri_positive: KneeMriPositive = "injured",
) -> CaseDataset:
    """Open a labelled data folder, detecting its layout.

    Args:
        path: MRNet root, KneeMRI root, or a folder of DICOM case folders with ``labels.csv``.
        task: Label to read (``acl``, ``meniscus``, ``abnormal`` or a ``labels.csv`` column).
        plane: Plane of the series to return.
        split: MRNet ``train`` or ``valid``; None for all cases. Other layouts have no splits.
        kneemri_positive: KneeMRI label mapping, ``injured`` (partial or ruptured) or ``ruptured``.

    Raises:
        ConfigurationError: unknown layout, task, plane or split; bad label rows; missing volumes.
    """
    root = Path(path)
    layout = detect_layout(root)
    if layout == "mrnet":
        return read_mrnet(root, task, plane, split)
    if split is not None:
        raise ConfigurationError(f"{root}: a {layout} data set has no {split!r} split")
    if layout == "kneemri":
        return read_kneemri(root, task, plane, kneemri_positive)
    return read_dicom_table(root, task, plane)
