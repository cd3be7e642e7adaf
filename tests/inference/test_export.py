"""Export of triage results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.inference.export import export_results
from napari_elnet.inference.triage import TaskResult


def _result(task: str, probability: float) -> TaskResult:
    return TaskResult(
        task=task,
        plane="axial",
        probability=probability,
        score=0.0,
        threshold=0.5,
        heatmap=np.full((2, 3, 4), probability, np.float32),
        relevance=np.array([1.0, 2.0]),
        top_slice=1,
        peak=(1, 0, 0),
        series_index=0,
        series_name="1: ax (axial)",
        series_uid="u",
        model_identity=f"{task}/axial m.pt@x",
        completeness_residual=0.0,
    )


def test_writes_json_csv_and_heatmaps(tmp_path: Path) -> None:
    results = [_result("acl", 0.9), _result("abnormal", 0.2)]
    written = export_results(tmp_path / "out", results)
    assert sorted(p.name for p in written) == [
        "abnormal_heatmap.npy",
        "acl_heatmap.npy",
        "results.csv",
        "results.json",
    ]
    records = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["task"] for r in records] == ["acl", "abnormal"]
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [(r["task"], r["decision"]) for r in rows] == [("acl", "True"), ("abnormal", "False")]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "acl_heatmap.npy"), results[0].heatmap)


def test_refuses_the_input_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        export_results(tmp_path / "study" / "out", [_result("acl", 0.5)], [tmp_path / "study"])


def test_not_applicable_results_are_exported_without_probability(tmp_path: Path) -> None:
    from dataclasses import replace

    from napari_elnet.inference.applicability import Applicability, no_series_of_plane

    refused = replace(
        _result("acl", 0.9),
        probability=None,
        score=None,
        applicability=Applicability(False, 31.5, 9.25, ("unlike the training series",)),
    )
    missing = replace(
        _result("abnormal", 0.2),
        probability=None,
        score=None,
        heatmap=None,
        relevance=None,
        top_slice=None,
        peak=None,
        series_index=None,
        applicability=no_series_of_plane("axial"),
    )
    written = export_results(tmp_path / "out", [refused, missing])
    assert "abnormal_heatmap.npy" not in [p.name for p in written]
    records = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert records[0]["applicable"] is False and records[0]["probability"] is None
    assert records[0]["applicability"] == {
        "score": 31.5,
        "threshold": 9.25,
        "reasons": ["unlike the training series"],
        "outside_plane": False,
    }
    assert records[1]["top_slice"] is None and records[1]["relevance"] is None
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [(r["applicable"], r["probability"], r["decision"]) for r in rows] == [
        ("false", "", ""),
        ("false", "", ""),
    ]
    assert rows[1]["reasons"] == "no axial series"
