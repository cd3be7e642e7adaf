"""The node end to end against a real Orthanc and dcmtk (child processes, loopback ports): a study
pushed from Orthanc is triaged and its report, map and key image come back to Orthanc under the
same study; series sent by storescu after the study's triage make it run again; after ``kill -9``
mid-receive the study completes and is triaged once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, build_context
from support.dicom_peers import (
    Orthanc,
    clone_study,
    free_port,
    start_orthanc,
    storescu,
    wait_for,
)

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.config import NodeConfig, Peer
from napari_elnet.node.events import NodeEvent
from napari_elnet.node.pipeline import PipelineConfig
from napari_elnet.node.service import Node
from napari_elnet.node.stability import study_id_of
from napari_elnet.node.store import INCOMING
from napari_elnet.worklist.report import read_report

PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."  # structured report storage classes
MR = "1.2.840.10008.5.1.4.1.1.4"


@pytest.fixture(scope="module")
def node_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, node_port: int) -> Iterator[Orthanc]:
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"), {"elnet": ("ELNET", node_port)})
    yield server
    server.stop()


def test_a_study_pushed_from_orthanc_comes_back_with_its_results(
    orthanc: Orthanc,
    node_port: int,
    tmp_path: Path,
    phantom_files: list[Path],
    tiny_models: list[LoadedModel],
) -> None:
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-PUSH")
    events: list[NodeEvent] = []
    lock = threading.Lock()

    def record(event: NodeEvent) -> None:
        with lock:
            events.append(event)

    report = tmp_path / "store" / "worklist.csv"
    node = Node(
        NodeConfig(store=tmp_path / "store", port=node_port, stable_seconds=1.0),
        PipelineConfig(
            report=report,
            device="cpu",
            send_to=Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port),
        ),
        tiny_models,
        record,
    )
    with node:
        orthanc_study = orthanc.upload(files)
        pushed = orthanc.request(
            "POST", "/modalities/elnet/store", {"Resources": [orthanc_study], "Synchronous": True}
        )
        assert pushed["InstancesCount"] == len(files)
        assert pushed["FailedInstancesCount"] == 0
        done = wait_for(lambda: any(e.kind in ("sent", "error") for e in events), 60)
        assert done, [e.kind for e in events]
    errors = [e.message for e in events if e.kind == "error"]
    assert errors == []
    kinds = [e.kind for e in events if e.kind != "receiving"]
    assert kinds == ["complete", "triaged", "sent"]
    assert max(e.instances for e in events if e.kind == "receiving") == len(files)
    # the worklist report holds the study once, with a row per model
    (result,) = read_report(report)
    assert result.study_id == study_id_of(study_uid)
    assert result.study == "ACC-PUSH"
    assert result.status == "ok"
    assert sorted(t.task for t in result.tasks) == ["abnormal", "acl", "meniscus"]
    # Orthanc has the images and, under the same study, the report, maps and key images
    classes = orthanc.sop_classes(study_uid)
    assert classes.count(MR) == len(files)
    assert sum(c.startswith(SR_PREFIX) for c in classes) == 1
    assert classes.count(PARAMETRIC_MAP) == 3
    assert classes.count(SECONDARY_CAPTURE) == 3


def test_series_sent_after_the_triage_make_the_node_triage_the_study_again(
    node_port: int, tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-LATE")
    first_series = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    early, late = tmp_path / "early", tmp_path / "late"
    for path in files:  # the first series now, the others after the study was triaged
        series = pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
        target = (early if series == first_series else late) / path.name
        target.parent.mkdir(exist_ok=True)
        path.rename(target)
    events: list[NodeEvent] = []
    report = tmp_path / "store" / "worklist.csv"
    node = Node(
        NodeConfig(store=tmp_path / "store", port=node_port, stable_seconds=1.0),
        PipelineConfig(report=report, device="cpu", dicom_results=False),
        tiny_models,
        events.append,
    )
    with node:
        for folder, triaged in ((early, 1), (late, 2)):
            output, _ = storescu(node_port, folder).communicate(timeout=60)
            assert "E:" not in output, output
            assert wait_for(lambda n=triaged: sum(e.kind == "triaged" for e in events) == n, 60)
    late_count = len(list(late.iterdir()))
    assert [e.late for e in events if e.kind == "triaged"] == [0, late_count]
    assert [e.kind for e in events if e.kind in ("skipped", "error")] == []
    (row,) = read_report(report)  # the second triage replaced the first
    assert row.study_id == study_id_of(study_uid)
    assert all(t.series for t in row.tasks)  # with the whole study, every model found its plane


def serve(store: Path, port: int, models: list[LoadedModel], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "napari_elnet.cli", "serve", "--store", str(store),
        "--port", str(port), "--stable-seconds", "1", "--device", "cpu", "--no-dicom-results",
        "--model", *(str(m.path) for m in models),
    ]  # fmt: skip
    handle = log.open("ab")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def echo_ok(port: int) -> bool:
    ae = AE(ae_title="TEST")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ELNET")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


def test_kill_9_mid_receive_then_restart_triages_the_study_once(
    tmp_path: Path, phantom_files: list[Path], tiny_models: list[LoadedModel]
) -> None:
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-KILL")
    store, log, port = tmp_path / "store", tmp_path / "serve.log", free_port()
    syntax = str(pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID)
    node = serve(store, port, tiny_models, log)
    try:
        assert wait_for(lambda: echo_ok(port), 60, 0.3), log.read_text()
        sender = AE(ae_title="SCANNER")
        sender.requested_contexts = [build_context(MR, syntax)]
        assoc = sender.associate("127.0.0.1", port, ae_title="ELNET")
        assert assoc.is_established
        half = len(files) // 2
        for path in files[:half]:
            assert assoc.send_c_store(path).Status == 0
        os.kill(node.pid, signal.SIGKILL)  # mid-study, with the association still open
        node.wait(timeout=10)
        assoc.abort()
        assert not (store / "worklist.csv").exists()
        assert len(list(store.rglob("*.dcm"))) == half

        node = serve(store, port, tiny_models, log)
        assert wait_for(lambda: echo_ok(port), 60, 0.3), log.read_text()
        assert list((store / INCOMING).iterdir()) == []
        retry = sender.associate(
            "127.0.0.1", port, ae_title="ELNET"
        )  # the sender sends it all again
        assert retry.is_established
        for path in files:
            assert retry.send_c_store(path).Status == 0
        retry.release()
        report = store / "worklist.csv"
        assert wait_for(lambda: report.exists() and read_report(report), 60), log.read_text()
        assert wait_for(lambda: "triaged" in log.read_text(), 10)
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=30)
    (result,) = read_report(report)
    assert result.study_id == study_id_of(study_uid)
    assert result.status == "ok"
    assert len(result.tasks) == 3
    assert log.read_text().count("triaged ") == 1
    stored = sorted(store.rglob("*.dcm"))
    assert len(stored) == len(files)
    for path in stored:  # every stored instance is whole
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
