"""Headless worklist: find the studies under a folder, triage them all, rank them by suspicion.

Public API: :func:`discover_studies` (cheap header pass, never raises for bad files),
:func:`worklist_steps` (generator yielding :class:`WorklistProgress`, returning a
:class:`WorklistReport`), :func:`run_worklist`, :func:`read_report` / :func:`write_report`, and the
suspicion score (:func:`suspicion_score`, defined in :mod:`napari_elnet.worklist.suspicion`).
"""

from __future__ import annotations

from napari_elnet.worklist.batch import (
    WorklistConfig,
    WorklistProgress,
    WorklistReport,
    run_worklist,
    worklist_steps,
)
from napari_elnet.worklist.discovery import (
    Discovery,
    PatientInfo,
    StudyRef,
    discover_studies,
)
from napari_elnet.worklist.loading import load_study_ref, load_study_scan, read_study_ref
from napari_elnet.worklist.report import StudyResult, TaskRow, read_report, write_report
from napari_elnet.worklist.suspicion import SuspicionConfig, calibrated, suspicion_score

__all__ = [
    "Discovery",
    "PatientInfo",
    "StudyRef",
    "StudyResult",
    "SuspicionConfig",
    "TaskRow",
    "WorklistConfig",
    "WorklistProgress",
    "WorklistReport",
    "calibrated",
    "discover_studies",
    "load_study_ref",
    "load_study_scan",
    "read_report",
    "read_study_ref",
    "run_worklist",
    "suspicion_score",
    "worklist_steps",
    "write_report",
]
