"""The task table: each MRNet task's plane, normalization and shipped model file (no torch).

The paper (Tsai et al., MIDL 2020, section 3.2) trains ACL tears and abnormality on axial series
with layer normalization and meniscal tears on coronal series with contrast normalization; the
shipped default models follow it, one file per task. Training defaults, the shipped models, the
command line and the widgets read this table; models for other labels are allowed and keep their
own task name (with :data:`FALLBACK` as their default plane and normalization).
"""

from __future__ import annotations

from dataclasses import dataclass

from napari_elnet.common.series import Plane
from napari_elnet.nn.norm_kinds import NormKind


@dataclass(frozen=True)
class Task:
    """One task of the table.

    Attributes:
        name: Label the model predicts (also the MRNet label file ``{split}-{name}.csv``).
        plane: Plane of the series the paper's model reads.
        norm: The paper's multi-slice normalization for it.
        model_file: File name of its shipped default model under ``models/default_models/``.
    """

    name: str
    plane: Plane
    norm: NormKind
    model_file: str


TASK_TABLE: tuple[Task, ...] = (
    Task("acl", "axial", "layer", "acl_axial.pt"),
    Task("meniscus", "coronal", "contrast", "meniscus_coronal.pt"),
    Task("abnormal", "axial", "layer", "abnormal_axial.pt"),
)
"""The MRNet tasks in display order."""

TASKS: tuple[str, ...] = tuple(task.name for task in TASK_TABLE)
"""Task names in display order: ``acl``, ``meniscus``, ``abnormal``."""

MRNET_LABELS: tuple[str, ...] = tuple(sorted(TASKS))
"""The same names in MRNet's (alphabetical) order, as its label files and our CSV columns list them."""

FALLBACK: tuple[Plane, NormKind] = ("axial", "layer")
"""Plane and normalization for a label outside the table."""


def find_task(name: str) -> Task | None:
    """The table's row for ``name``, or None for a label outside the table."""
    return next((task for task in TASK_TABLE if task.name == name), None)


def paper_choice(name: str) -> tuple[Plane, NormKind]:
    """The paper's ``(plane, norm)`` for task ``name``; :data:`FALLBACK` outside the table."""
    task = find_task(name)
    return (task.plane, task.norm) if task else FALLBACK
