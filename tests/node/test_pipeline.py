"""Triage of completed studies: the worklist's report and resume rules, once per study."""

from __future__ import annotations

import threading
from pathlib import Path

import pydicom
from support.dicom_peers import clone_study, wait_for

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.events import NodeEvent
from napari_elnet.node.pipeline import (
    PipelineConfig,
    TriageWorker,
    studies_to_resume,
    triage_study,
)
from napari_elnet.node.stability import study_id_of
from napari_elnet.node.store import Store
from napari_elnet.worklist import WorklistConfig, run_worklist
from napari_elnet.worklist.report import read_report


def stored_study(tmp_path: Path, phantom_files: list[Path], accession: str) -> tuple[Store, str]:
    store = Store(tmp_path / "store")
    study_uid, files = clone_study(phantom_files, tmp_path / "src", accession)
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        store.write(study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID, path.read_bytes())
    return store, study_uid


def test_a_study_is_reported_once_with_the_worklist_id(
    tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    store, study_uid = stored_study(tmp_path, phantom_files, "ACC-PIPE")
    config = PipelineConfig(report=store.root / "worklist.csv", device="cpu", dicom_results=False)
    first = triage_study(store, study_uid, tiny_models, config)
    assert first.result is not None
    assert first.result.status == "ok"
    assert first.result.study_id == study_id_of(study_uid)
    assert first.files == ()
    again = triage_study(store, study_uid, tiny_models, config)
    assert again.result is None  # the report holds it: same resume rule as `napari-elnet triage`
    assert [r.study_id for r in read_report(config.report)] == [study_id_of(study_uid)]
    # `napari-elnet triage STORE` sees the same study under the same id and the same scores
    batch = run_worklist(store.root, tiny_models, WorklistConfig(device="cpu"))
    assert [r.study_id for r in batch.results] == [first.result.study_id]
    assert batch.results[0].suspicion == first.result.suspicion


def test_worker_triages_in_order_and_says_when_it_skips(
    tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    store, study_uid = stored_study(tmp_path, phantom_files, "ACC-WORKER")
    events: list[NodeEvent] = []
    threads: set[str] = set()

    def record(event: NodeEvent) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    config = PipelineConfig(report=store.root / "worklist.csv", device="cpu", dicom_results=False)
    worker = TriageWorker(store, tiny_models, config, record)
    worker.start()
    try:
        worker.submit(study_uid)
        worker.submit(study_uid)
        assert wait_for(lambda: len(worker.outcomes) == 2, 60)
    finally:
        worker.stop()
    assert [e.kind for e in events] == ["triaged", "skipped"]
    assert threads == {"elnet-node-triage"}  # off the caller's (network, GUI) threads


def test_instances_arriving_after_the_triage_make_it_run_again(
    tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    store = Store(tmp_path / "store")
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-LATE")
    by_series: dict[str, list[tuple[str, Path]]] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        plane_series = by_series.setdefault(ds.SeriesInstanceUID, [])
        plane_series.append((ds.SOPInstanceUID, path))
    first_series, *later_series = sorted(by_series)

    def store_series(series_uid: str) -> None:
        for sop_uid, path in by_series[series_uid]:
            store.write(study_uid, series_uid, sop_uid, path.read_bytes())

    store_series(first_series)
    config = PipelineConfig(report=store.root / "worklist.csv", device="cpu")
    first = triage_study(store, study_uid, tiny_models, config)
    assert first.result is not None and first.late == 0
    not_run = {t.task for t in first.result.tasks if t.series == ""}
    assert not_run  # one series: at least one model found no series of its plane
    first_uids = {pydicom.dcmread(p).SOPInstanceUID for p in first.files}

    for series_uid in later_series:  # the rest of the study arrives after the quiet time
        store_series(series_uid)
    events: list[NodeEvent] = []
    again = triage_study(store, study_uid, tiny_models, config, events.append)
    late = sum(len(by_series[s]) for s in later_series)
    assert again.result is not None and again.late == late
    assert {t.task for t in again.result.tasks if t.series == ""} < not_run
    assert [(e.late, e.message) for e in events if e.kind == "triaged"] == [
        (late, f"triaged again: {late} instance(s) arrived after its first triage")
    ]
    rows = read_report(config.report)
    assert [r.study_id for r in rows] == [study_id_of(study_uid)]  # replaced, not appended
    assert [t.series for t in rows[0].tasks] == [t.series for t in again.result.tasks]
    written = sorted(store.results_dir(study_uid).glob("*.dcm"))
    assert written == sorted(again.files)  # the first triage's objects are gone
    assert not first_uids & {pydicom.dcmread(p).SOPInstanceUID for p in again.files}

    # the same instances sent once more change nothing
    store_series(later_series[0])
    assert studies_to_resume(store, config.report) == []
    assert triage_study(store, study_uid, tiny_models, config).result is None


def test_a_study_that_received_instances_after_its_triage_is_resumed_on_start(
    tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    store, study_uid = stored_study(tmp_path, phantom_files, "ACC-RESUME")
    config = PipelineConfig(report=store.root / "worklist.csv", device="cpu", dicom_results=False)
    assert studies_to_resume(store, config.report) == [study_uid]  # not in the report yet
    assert triage_study(store, study_uid, tiny_models, config).result is not None
    assert studies_to_resume(store, config.report) == []
    extra = pydicom.dcmread(phantom_files[0])  # one more instance arrives, then the node stops
    extra.SOPInstanceUID = pydicom.uid.generate_uid()
    extra.StudyInstanceUID = study_uid
    path = tmp_path / "extra.dcm"
    extra.save_as(path)
    store.write(study_uid, extra.SeriesInstanceUID, extra.SOPInstanceUID, path.read_bytes())
    assert studies_to_resume(store, config.report) == [study_uid]
