"""End to end on phantom DICOM studies (skipped until ``napari_elnet.phantom`` is installed).

With random k=1 models the test checks the mechanics: one study per phantom case, three planes each,
every task on every study, a ranked report. With shipped default models it also checks that the
ranking separates abnormal from normal cases about as well as the abnormal model does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from support.synthetic_data import single_thread
from support.worklist_factory import make_models

from napari_elnet import cli, phantom
from napari_elnet.models.defaults import load_default_models
from napari_elnet.training.metrics import roc_auc
from napari_elnet.worklist import WorklistConfig, discover_studies, load_study_ref, run_worklist

one_thread = pytest.fixture(single_thread, autouse=True)


def _labels(root: Path) -> dict[str, dict[str, int]]:
    with (root / "labels.csv").open() as handle:
        return {
            row["case"]: {k: int(v) for k, v in row.items() if k != "case"}
            for row in csv.DictReader(handle)
        }


def _case(folder: str, labels: dict[str, dict[str, int]]) -> str:
    """The label-table case of a root-relative study folder (``case_0003/ax`` -> ``case_0003``)."""
    top = Path(folder).parts[0]
    matches = [case for case in labels if top == case or top.endswith(f"_{case}")]
    assert len(matches) == 1, f"{top} matches {matches} in labels.csv"
    return matches[0]


def test_phantom_folder_is_triaged_one_study_per_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "phantom"
    phantom.write_dicom_dataset(root, 4, 0)
    labels = _labels(root)
    discovery = discover_studies(root)
    assert len(discovery.studies) == len(labels)
    assert discovery.problems == ()
    planes = sorted(s.plane for s in load_study_ref(discovery.studies[0]))
    assert planes == ["axial", "coronal", "sagittal"]
    models = make_models(tmp_path / "models", [("acl", "axial"), ("meniscus", "coronal")])
    out = tmp_path / "report.csv"
    argv = ["triage", str(root), "--out", str(out), "--device", "cpu", "--include-phi"]
    assert cli.main([*argv, "--model", *(str(m.path) for m in models)]) == cli.EXIT_OK
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * len(labels)
    assert {_case(r["folders"].split(";")[0], labels) for r in rows} == set(labels)
    assert all(r["status"] == "ok" for r in rows)


def test_ranking_follows_the_default_models(tmp_path: Path) -> None:
    models = load_default_models()
    if not models:
        pytest.skip("no default models ship with this build")
    root = tmp_path / "phantom"
    phantom.write_dicom_dataset(root, 24, 1)
    labels = _labels(root)
    report = run_worklist(root, models, WorklistConfig(device="cpu", include_phi=True))
    by_case = {_case(r.folders[0], labels): r for r in report.results}
    cases = sorted(by_case)
    truth = [labels[c]["abnormal"] for c in cases]
    suspicion = [by_case[c].suspicion for c in cases]
    abnormal_model = [
        next(t.probability for t in by_case[c].tasks if t.task == "abnormal") for c in cases
    ]
    assert roc_auc(truth, suspicion) >= roc_auc(truth, abnormal_model) - 0.1
