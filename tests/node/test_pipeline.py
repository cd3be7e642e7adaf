"""Triage of completed studies: the worklist's report and resume rules, once per study."""

from __future__ import annotations

import threading
from pathlib import Path

import pydicom
from support.dicom_peers import clone_study, wait_for

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.events import NodeEvent
from napari_elnet.node.pipeline import PipelineConfig, TriageWorker, triage_study
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
