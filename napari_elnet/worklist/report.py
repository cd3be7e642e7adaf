"""The worklist report: per study and task results, ranked by suspicion, as CSV or JSON.

CSV: one row per study and task (a study that could not be triaged has one row with an empty task),
each row repeating the study's rank, suspicion and status. JSON: ``{"format", "version",
"suspicion", "studies": [{..., "tasks": [...]}]}``. Both list studies by rank: the groups of
:data:`GROUPS` in order (suspicious, not assessed, negative, error), each by suspicion descending
(studies without a score last). Patient name, patient ID, study date, source folders and series UIDs
are written only with ``include_phi``.

Reports are written atomically (temporary file in the same folder, then rename) and can be read back,
so an interrupted run resumes from what the report holds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from napari_elnet.common.atomic import write_text_atomic
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.json_output import dumps_json
from napari_elnet.worklist.discovery import PatientInfo

FORMAT = "napari-elnet-worklist"
VERSION = 1
SUFFIXES: tuple[str, ...] = (".csv", ".json")
Status = Literal["ok", "error"]

SUSPICION_DEFINITION = (
    "max over tasks of w_t * q_t, q_t = p/(2*theta) below the threshold theta and "
    "0.5 + (p - theta)/(2*(1 - theta)) at or above it; w = 1 for tears (acl, meniscus) and other "
    "tasks, 0.5 for abnormal"
)
STUDY_COLUMNS = ("rank", "study_id", "study", "status", "reason", "suspicion", "group")
TASK_COLUMNS = (
    "task", "probability", "decision", "threshold", "top_slice", "plane", "series", "model",
    "warnings", "applicable", "applicability_score", "applicability_threshold", "reasons",
    "outside_plane",
)  # fmt: skip
GROUPS = ("suspicious", "not assessed", "negative", "error")
"""Worklist groups, in rank order: a positive decision of an applicable model; else any model not
applicable (probability withheld: no confident negative); else negative; then unreadable studies."""
PHI_COLUMNS = ("patient_id", "patient_name", "study_date", "folders", "series_uid")


@dataclass(frozen=True)
class TaskRow:
    """One model's result on one study (the heatmap is not kept).

    Attributes:
        task: The model's task.
        probability: Probability of the positive class; None when withheld (not applicable).
        decision: ``probability >= threshold``; None when withheld.
        threshold: The model's decision threshold.
        top_slice: Index of the most informative slice in the series used (None: not run).
        plane: Plane the model reads.
        series: Display name of the series used (``number: description (plane)``).
        model: Model identity (``task/plane file@sha256-prefix``).
        series_uid: SeriesInstanceUID of the series used (written only with PHI).
        warnings: Warnings of the result, e.g. a plane mismatch.
        applicable: Whether the model was applicable (None: unknown, no description).
        applicability_score, applicability_threshold: Its applicability score and threshold.
        reasons: Why it was not applicable (or unknown, or outside its plane).
        outside_plane: The model ran on a series of another plane chosen by the user.
    """

    task: str
    probability: float | None
    decision: bool | None
    threshold: float
    top_slice: int | None
    plane: str
    series: str
    model: str
    series_uid: str = ""
    warnings: tuple[str, ...] = ()
    applicable: bool | None = None
    applicability_score: float | None = None
    applicability_threshold: float | None = None
    reasons: tuple[str, ...] = ()
    outside_plane: bool = False


@dataclass(frozen=True)
class StudyResult:
    """The outcome of triaging one study.

    Attributes:
        study_id: Stable id (the resume key).
        study: Display name (accession number or a hash of the StudyInstanceUID).
        status: ``ok`` or ``error``.
        reason: Why the study could not be triaged ("" when ok).
        suspicion: The ranking score (see :mod:`napari_elnet.worklist.suspicion`); None on error.
        tasks: One row per model.
        phi: Patient data, written only with ``include_phi``.
        folders: Root-relative folders of the study (may name the patient: written only with PHI).
        seconds: Wall time spent on the study (load wait + compute).
        warnings: The study's own warnings of this run: one per file of it that could not be
            loaded (``<file name>: <reason>``). The report writes them in every task row's
            warnings (they are part of those when read back), not as a column of their own.
    """

    study_id: str
    study: str
    status: Status
    reason: str = ""
    suspicion: float | None = None
    tasks: tuple[TaskRow, ...] = ()
    phi: PatientInfo = field(default_factory=PatientInfo)
    folders: tuple[str, ...] = ()
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()


def study_group(result: StudyResult) -> str:
    """The study's worklist group (one of :data:`GROUPS`)."""
    if result.status != "ok":
        return "error"
    if any(task.decision for task in result.tasks):
        return "suspicious"
    if any(task.probability is None for task in result.tasks):
        return "not assessed"
    return "negative"


def rank_key(result: StudyResult) -> tuple[int, bool, float, str, str]:
    """Sort key: by group (:data:`GROUPS`), then suspicion descending, display name and id."""
    score = result.suspicion
    group = GROUPS.index(study_group(result))
    return (group, score is None, -(score or 0.0), result.study, result.study_id)


def ranked(results: Iterable[StudyResult]) -> list[StudyResult]:
    """The results in worklist order (see :func:`rank_key`)."""
    return sorted(results, key=rank_key)


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or ConfigurationError when its suffix is not .csv or .json."""
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise ConfigurationError(
            f"report {target}: suffix must be one of {SUFFIXES}, got {target.suffix or 'none'!r}"
        )
    return target


def write_report(
    path: str | os.PathLike[str], results: Iterable[StudyResult], include_phi: bool = False
) -> Path:
    """Write the ranked report atomically, as CSV or JSON by the file's suffix."""
    target = check_report_path(path)
    ordered = ranked(results)
    if target.suffix.lower() == ".csv":
        text = _csv_text(ordered, include_phi)
    else:
        text = dumps_json(_json_data(ordered, include_phi), indent=2) + "\n"  # NaN -> null
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(target, text)


def read_report(path: str | os.PathLike[str]) -> list[StudyResult]:
    """The studies of an existing report (an empty list when the file does not exist).

    Raises:
        ConfigurationError: The file exists but is not a worklist report; the message names it.
    """
    target = check_report_path(path)
    if not target.is_file():
        return []
    try:
        text = target.read_text(encoding="utf-8")
        if target.suffix.lower() == ".csv":
            return _from_csv(text)
        return _from_json(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"report {target} exists but cannot be read as a worklist report ({exc}); "
            "move it away or choose another --out"
        ) from exc


def _number(value: float | None) -> str:
    """A score as text with 4 decimals ("" for None)."""
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def _study_fields(rank: int, result: StudyResult) -> dict[str, object]:
    return {
        "rank": rank,
        "study_id": result.study_id,
        "study": result.study,
        "status": result.status,
        "reason": result.reason,
        "suspicion": result.suspicion,
        "group": study_group(result),
    }


def _phi_fields(result: StudyResult, task: TaskRow | None) -> dict[str, object]:
    return {
        "patient_id": result.phi.patient_id,
        "patient_name": result.phi.patient_name,
        "study_date": result.phi.study_date,
        "folders": ";".join(result.folders),
        "series_uid": task.series_uid if task else "",
    }


def _task_fields(task: TaskRow) -> dict[str, object]:
    return {
        "task": task.task,
        "probability": "" if task.probability is None else f"{task.probability:.6f}",
        "decision": "" if task.decision is None else int(task.decision),
        "threshold": task.threshold,
        "top_slice": "" if task.top_slice is None else task.top_slice,
        "plane": task.plane,
        "series": task.series,
        "model": task.model,
        "warnings": " | ".join(task.warnings),
        "applicable": "" if task.applicable is None else int(task.applicable),
        "applicability_score": _number(task.applicability_score),
        "applicability_threshold": _number(task.applicability_threshold),
        "reasons": " | ".join(task.reasons),
        "outside_plane": int(task.outside_plane),
    }


def _csv_text(ordered: Sequence[StudyResult], include_phi: bool) -> str:
    """One row per study and task."""
    columns = [*STUDY_COLUMNS, *TASK_COLUMNS, *(PHI_COLUMNS if include_phi else ())]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for rank, result in enumerate(ordered, start=1):
        study = _study_fields(rank, result)
        study["suspicion"] = _number(result.suspicion)
        for task in result.tasks or (None,):
            row = {**study, **(_task_fields(task) if task else {})}
            if include_phi:
                row.update(_phi_fields(result, task))
            writer.writerow(row)
    return buffer.getvalue()


def _json_data(ordered: Sequence[StudyResult], include_phi: bool) -> dict[str, Any]:
    studies = []
    for rank, result in enumerate(ordered, start=1):
        record: dict[str, Any] = {**_study_fields(rank, result), "seconds": result.seconds}
        if include_phi:
            record.update(
                patient_id=result.phi.patient_id,
                patient_name=result.phi.patient_name,
                study_date=result.phi.study_date,
                folders=list(result.folders),
            )
        record["tasks"] = []
        for task in result.tasks:
            fields: dict[str, Any] = {
                **_task_fields(task),
                "probability": task.probability,
                "decision": task.decision,
                "top_slice": task.top_slice,
                "warnings": list(task.warnings),
                "applicable": task.applicable,
                "applicability": {
                    "score": task.applicability_score,
                    "threshold": task.applicability_threshold,
                    "reasons": list(task.reasons),
                    "outside_plane": task.outside_plane,
                },
            }
            for key in ("applicability_score", "applicability_threshold", "reasons"):
                del fields[key]
            fields["outside_plane"] = task.outside_plane
            if include_phi:
                fields["series_uid"] = task.series_uid
            record["tasks"].append(fields)
        studies.append(record)
    return {
        "format": FORMAT,
        "version": VERSION,
        "suspicion": SUSPICION_DEFINITION,
        "studies": studies,
    }


def _optional_float(text: object) -> float | None:
    return None if text in ("", None) else float(text)  # type: ignore[arg-type]


def _optional_bool(value: object) -> bool | None:
    return None if value in ("", None) else str(value).lower() in ("1", "true")


def _split(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item for item in value.split(" | ") if item)
    return tuple(str(item) for item in value or ())  # type: ignore[attr-defined]


def _task_from(record: dict[str, Any]) -> TaskRow:
    nested = record.get("applicability")
    applicability = nested if isinstance(nested, dict) else {}
    top_slice = record.get("top_slice")
    return TaskRow(
        task=str(record["task"]),
        probability=_optional_float(record.get("probability")),
        decision=_optional_bool(record.get("decision")),
        threshold=float(record["threshold"]),
        top_slice=None if top_slice in ("", None) else int(top_slice),
        plane=str(record["plane"]),
        series=str(record["series"]),
        model=str(record["model"]),
        series_uid=str(record.get("series_uid") or ""),
        warnings=_split(record.get("warnings")),
        applicable=_optional_bool(record.get("applicable")),
        applicability_score=_optional_float(
            applicability.get("score", record.get("applicability_score"))
        ),
        applicability_threshold=_optional_float(
            applicability.get("threshold", record.get("applicability_threshold"))
        ),
        reasons=_split(applicability.get("reasons", record.get("reasons"))),
        outside_plane=bool(
            _optional_bool(applicability.get("outside_plane", record.get("outside_plane")))
        ),
    )


def _study_from(record: dict[str, Any], tasks: tuple[TaskRow, ...]) -> StudyResult:
    folders = record.get("folders") or ()
    if isinstance(folders, str):
        folders = tuple(f for f in folders.split(";") if f)
    status = str(record["status"])
    if status not in ("ok", "error"):
        raise ValueError(f"study {record.get('study_id')}: unknown status {status!r}")
    return StudyResult(
        study_id=str(record["study_id"]),
        study=str(record["study"]),
        status=status,  # type: ignore[arg-type]
        reason=str(record.get("reason") or ""),
        suspicion=_optional_float(record.get("suspicion")),
        tasks=tasks,
        phi=PatientInfo(
            patient_id=str(record.get("patient_id") or ""),
            patient_name=str(record.get("patient_name") or ""),
            study_date=str(record.get("study_date") or ""),
        ),
        folders=tuple(folders),
        seconds=float(record.get("seconds") or 0.0),
    )


def _from_csv(text: str) -> list[StudyResult]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "study_id" not in rows[0]:
        raise ValueError("no study_id column")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["study_id"], []).append(row)
    results = []
    for group in grouped.values():
        tasks = tuple(_task_from(row) for row in group if row.get("task"))
        results.append(_study_from(group[0], tasks))
    return results


def _from_json(data: Any) -> list[StudyResult]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    return [
        _study_from(record, tuple(_task_from(t) for t in record.get("tasks", ())))
        for record in data["studies"]
    ]


def without_phi(result: StudyResult) -> StudyResult:
    """A copy of ``result`` without patient data, folders or series UIDs."""
    tasks = tuple(replace(t, series_uid="") for t in result.tasks)
    return replace(result, phi=PatientInfo(), folders=(), tasks=tasks)
