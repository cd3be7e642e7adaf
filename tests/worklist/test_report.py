"""Suspicion score properties and the report's CSV/JSON round trip, ranking and PHI columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.training.metrics import roc_auc
from napari_elnet.worklist import (
    PatientInfo,
    StudyResult,
    SuspicionConfig,
    TaskRow,
    calibrated,
    read_report,
    suspicion_score,
    write_report,
)
from napari_elnet.worklist.report import ranked


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_calibration_maps_the_threshold_to_one_half_and_is_increasing(threshold: float) -> None:
    assert calibrated(threshold, threshold) == pytest.approx(0.5)
    assert (calibrated(0.0, threshold), calibrated(1.0, threshold)) == (0.0, 1.0)
    grid = np.linspace(0, 1, 101)
    values = [calibrated(p, threshold) for p in grid]
    assert np.all(np.diff(values) > 0)
    assert all((v >= 0.5) == (p >= threshold) for p, v in zip(grid, values, strict=True))


def test_a_positive_tear_ranks_above_abnormal_only() -> None:
    tear = suspicion_score([("acl", 0.51, 0.5), ("abnormal", 0.1, 0.5)])
    abnormal_only = suspicion_score([("acl", 0.49, 0.5), ("abnormal", 0.999, 0.5)])
    meniscus_low_threshold = suspicion_score([("meniscus", 0.31, 0.3)])
    assert tear is not None and abnormal_only is not None
    assert tear > 0.5 >= abnormal_only
    assert meniscus_low_threshold is not None and meniscus_low_threshold > 0.5
    assert suspicion_score([]) is None


def test_one_task_ordering_keeps_the_model_auc() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probabilities = np.clip(0.3 * labels + rng.uniform(0, 0.7, 200), 0, 1)
    scores = [suspicion_score([("acl", float(p), 0.35)]) for p in probabilities]
    assert roc_auc(labels, scores) == pytest.approx(roc_auc(labels, probabilities))


def test_weights_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="suspicion weight of 'acl' must be in"):
        SuspicionConfig(weights={"acl": 0.0})
    assert SuspicionConfig().weight("effusion") == 1.0


def _study(name: str, suspicion: float | None, status: str = "ok") -> StudyResult:
    tasks = ()
    if suspicion is not None:
        tasks = (
            TaskRow("acl", suspicion, suspicion >= 0.5, 0.5, 3, "axial", "1: AX (axial)", "m@1",
                    series_uid="1.2.3", warnings=("w1", "w2")),
            TaskRow("abnormal", 0.2, False, 0.5, 1, "axial", "1: AX (axial)", "m@2"),
        )  # fmt: skip
    return StudyResult(
        study_id=f"id-{name}",
        study=name,
        status=status,  # type: ignore[arg-type]
        reason="" if status == "ok" else "study X: no usable image series",
        suspicion=suspicion,
        tasks=tasks,
        phi=PatientInfo("PID1", "Doe^Jane", "20240101"),
        folders=("Doe_Jane/knee",),
    )


def test_ranking_puts_errors_last_and_breaks_ties_by_name() -> None:
    studies = [_study("b", 0.4), _study("err", None, "error"), _study("a", 0.4), _study("c", 0.9)]
    assert [s.study for s in ranked(studies)] == ["c", "a", "b", "err"]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_report_round_trip_with_phi(tmp_path: Path, suffix: str) -> None:
    studies = [_study("low", 0.3), _study("bad", None, "error"), _study("high", 0.8)]
    path = write_report(tmp_path / f"r{suffix}", studies, include_phi=True)
    back = read_report(path)
    assert [s.study for s in back] == ["high", "low", "bad"]
    assert back[0] == StudyResult(**{**_study("high", 0.8).__dict__, "suspicion": 0.8})
    assert back[2].reason == "study X: no usable image series" and back[2].tasks == ()
    assert [p.name for p in tmp_path.iterdir()] == [f"r{suffix}"]  # no temporary file left


def test_csv_has_one_row_per_study_and_task_and_phi_only_when_asked(tmp_path: Path) -> None:
    studies = [_study("high", 0.8), _study("bad", None, "error")]
    plain = write_report(tmp_path / "plain.csv", studies)
    rows = list(csv.DictReader(plain.open()))
    assert [(r["rank"], r["study"], r["task"]) for r in rows] == [
        ("1", "high", "acl"),
        ("1", "high", "abnormal"),
        ("2", "bad", ""),
    ]
    text = plain.read_text()
    for secret in ("PID1", "Doe^Jane", "Doe_Jane", "20240101", "1.2.3"):
        assert secret not in text
    with_phi = list(csv.DictReader(write_report(tmp_path / "phi.csv", studies, True).open()))
    assert with_phi[0]["patient_name"] == "Doe^Jane"
    assert with_phi[0]["series_uid"] == "1.2.3"
    assert read_report(plain)[0].phi == PatientInfo()


def test_json_documents_the_score(tmp_path: Path) -> None:
    data = json.loads(write_report(tmp_path / "r.json", [_study("a", 0.7)]).read_text())
    assert data["suspicion"].startswith("max over tasks of w_t * q_t")
    assert "patient_name" not in data["studies"][0]


def test_foreign_file_is_not_taken_for_a_report(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ConfigurationError, match="cannot be read as a worklist report"):
        read_report(other)
    assert read_report(tmp_path / "missing.csv") == []


def _row(task: str, probability: float | None, applicable: bool | None = True) -> TaskRow:
    withheld = probability is None
    return TaskRow(
        task=task,
        probability=probability,
        decision=None if withheld else probability >= 0.5,  # type: ignore[operator]
        threshold=0.5,
        top_slice=None if withheld else 3,
        plane="axial",
        series="" if withheld else "2: AX PD (axial)",
        model=f"{task}/axial m.pt@x",
        applicable=applicable,
        applicability_score=None if withheld else 4.0,
        applicability_threshold=9.0,
        reasons=("no axial series",) if withheld else (),
    )


def test_not_assessed_studies_rank_after_suspicious_and_before_negatives(tmp_path: Path) -> None:
    def study(name: str, *rows: TaskRow) -> StudyResult:
        scored = [(r.task, r.probability, r.threshold) for r in rows if r.probability is not None]
        return StudyResult(name, name, "ok", suspicion=suspicion_score(scored), tasks=rows)

    results = [
        study("negative-high", _row("acl", 0.45), _row("meniscus", 0.4)),
        study("unassessed", _row("acl", None, False), _row("meniscus", 0.1)),
        study("positive", _row("acl", 0.9), _row("meniscus", None, False)),
        study("negative-low", _row("acl", 0.05), _row("meniscus", 0.02, None)),
        StudyResult("broken", "broken", "error", reason="unreadable"),
    ]
    order = ["positive", "unassessed", "negative-high", "negative-low", "broken"]
    assert [r.study for r in ranked(results)] == order
    for suffix in (".csv", ".json"):
        path = write_report(tmp_path / f"worklist{suffix}", results)
        back = read_report(path)
        assert [r.study for r in ranked(back)] == order
        unassessed = next(r for r in back if r.study == "unassessed")
        withheld = next(t for t in unassessed.tasks if t.task == "acl")
        assert withheld.probability is None and withheld.decision is None
        assert withheld.applicable is False and withheld.reasons == ("no axial series",)
        assert withheld.applicability_threshold == 9.0 and withheld.top_slice is None
    data = json.loads((tmp_path / "worklist.json").read_text())
    groups = [s["group"] for s in data["studies"]]
    assert groups == ["suspicious", "not assessed", "negative", "negative", "error"]
    acl = data["studies"][1]["tasks"][0]
    assert acl["probability"] is None and acl["applicable"] is False
    assert acl["applicability"]["reasons"] == ["no axial series"]
    rows = list(csv.DictReader((tmp_path / "worklist.csv").open()))
    assert rows[2]["group"] == "not assessed" and rows[2]["probability"] == ""
