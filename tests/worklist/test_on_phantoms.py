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


def test_two_lanes_give_the_report_of_one_lane(tmp_path: Path) -> None:
    """Two lanes (one torch thread each) give the report of one lane on one thread, bit for bit
    (shipped models, or random ones without; a study that cannot be read included); the written
    reports differ only in the timings. One lane on two torch threads gives the same ranking, its
    probabilities differing in float32 rounding only: ELNet's forward on a whole series sums in an
    order that depends on torch's thread count (its pooled features differ by up to 2.4e-6 between
    one and two threads; the network inputs are the same bits)."""
    import json
    from dataclasses import replace

    import torch
    from support.worklist_factory import write_dicom_study

    models = load_default_models() or make_models(
        tmp_path / "models", [("acl", "axial"), ("meniscus", "coronal"), ("abnormal", "sagittal")]
    )
    root = tmp_path / "phantom"
    phantom.write_dicom_dataset(root, 3, 2)
    broken = write_dicom_study(root / "broken", "1.2.826.0.1.3680043.8.498.77", accession="BAD")
    for path in broken:
        path.write_bytes(path.read_bytes()[:-1000])  # pixel data cut short
    before = torch.get_num_threads()
    reports, written = [], []
    try:
        for lanes, threads in ((1, 1), (2, 2), (1, 2)):  # threads: the caller's torch threads
            torch.set_num_threads(threads)
            out = tmp_path / f"lanes{lanes}-{threads}.json"
            config = WorklistConfig(device="cpu", report=out, lanes=lanes)
            reports.append(run_worklist(root, models, config))
            written.append(json.loads(out.read_text()))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    one, two, serial = ([replace(r, seconds=0.0) for r in report.results] for report in reports)
    assert len(one) == 4 and [r.status for r in one].count("error") == 1
    assert one == two  # every field, probabilities compared exactly
    assert _without_seconds(written[0]) == _without_seconds(written[1])
    assert [r.study_id for r in serial] == [r.study_id for r in one]
    probabilities = [[t.probability for r in rs for t in r.tasks] for rs in (one, serial)]
    assert probabilities[0] == pytest.approx(probabilities[1], rel=1e-4, abs=1e-9)


def _without_seconds(value: object) -> object:
    """A parsed JSON report without its ``seconds`` fields (the only ones that vary by run)."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value
