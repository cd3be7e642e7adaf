"""The "DICOM node" section of the worklist widget in a real napari viewer (xvfb): studies sent by
dcmtk's storescu appear as rows, are triaged into the worklist and open with their heatmaps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("napari")

from qtpy.QtCore import Qt
from support.dicom_peers import (
    clone_study,
    dcmtk_env,
    free_port,
    phantom_cache_dir,
    phantom_template,
    require_tool,
)
from support.worklist_factory import make_models

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.plugin.node_panel import STATE_COLUMN
from napari_elnet.plugin.worklist_widget import NAME_COLUMN, WorklistWidget


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedModel]:
    folder = tmp_path_factory.mktemp("models")
    return make_models(folder, [("acl", "axial"), ("meniscus", "coronal")])


@pytest.fixture(scope="module")
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    return phantom_template(phantom_cache_dir(request, tmp_path_factory))


def _worklist_with_node_settings(
    viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> WorklistWidget:
    """A worklist widget with ``models`` on the CPU, its node set to a free port, a store under
    ``tmp_path`` and a 0.5 s quiet time (not started)."""
    widget = WorklistWidget(viewer, data_dir=tmp_path / "data")
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    widget.set_models(models)
    widget.device_combo.setCurrentText("cpu")
    panel = widget.node_panel
    panel.port_spin.setValue(free_port())
    panel.store_edit.setText(str(tmp_path / "store"))
    panel.stable_spin.setValue(0.5)
    return widget


def test_received_study_is_triaged_into_the_worklist_and_opens(
    template: list[Path], make_napari_viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> None:
    storescu = require_tool("storescu")
    viewer = make_napari_viewer()
    widget = _worklist_with_node_settings(viewer, qtbot, tmp_path, models)
    panel = widget.node_panel
    port = panel.port_spin.value()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.node is not None and panel.node.running
    assert f"listening as ELNET on 127.0.0.1:{port}" in panel.status.text()
    assert panel.start_button.text() == "Stop"

    study_uid, _ = clone_study(template, tmp_path / "src", "ACC-GUI")
    with qtbot.waitSignal(panel.studyTriaged, timeout=60_000) as triaged:
        sent = subprocess.run(
            [storescu, "-aec", "ELNET", "+sd", "+r", "127.0.0.1", str(port), str(tmp_path / "src")],
            capture_output=True, text=True, timeout=60, env=dcmtk_env(),
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    result = triaged.args[0]
    assert result.study == "ACC-GUI"
    assert panel.incoming.rowCount() == 1
    assert panel.incoming.item(0, 0).text() == "ACC-GUI"
    assert panel.incoming.item(0, 1).text() == str(len(template))
    assert panel.incoming.item(0, STATE_COLUMN).text().startswith("triaged")
    row = widget.row_of(result.study_id)
    assert row is not None
    assert widget.table.item(row, NAME_COLUMN).text() == "ACC-GUI"

    with qtbot.waitSignal(widget.studyOpened, timeout=60_000) as opened:
        widget.open_row(row)
    assert opened.args[0].ref.study_uid == study_uid
    heatmaps = [layer for layer in viewer.layers if "heatmap" in layer.name.lower()]
    assert len(heatmaps) == len(models)

    node = panel.node
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.node is None and not node.running
    assert panel.start_button.text() == "Start"


def test_closing_the_widget_stops_the_node(
    make_napari_viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> None:
    viewer = make_napari_viewer()
    widget = WorklistWidget(viewer, data_dir=tmp_path / "data")
    widget.set_models(models)
    panel = widget.node_panel
    panel.port_spin.setValue(free_port())
    panel.store_edit.setText(str(tmp_path / "store"))
    assert panel.start_node()
    node = panel.node
    assert node is not None and node.running
    widget.close()
    widget.deleteLater()
    qtbot.waitUntil(lambda: not node.running, timeout=10_000)


def test_a_restarted_panel_shows_the_studies_triaged_before(
    template: list[Path], make_napari_viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> None:
    import pydicom

    from napari_elnet.node.pipeline import PipelineConfig, triage_study
    from napari_elnet.node.store import Store

    store = Store(tmp_path / "store")
    study_uid, files = clone_study(template, tmp_path / "src", "ACC-BEFORE")
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        store.write(study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID, path.read_bytes())
    config = PipelineConfig(report=store.root / "worklist.csv", device="cpu", dicom_results=False)
    assert triage_study(store, study_uid, models, config).result is not None

    viewer = make_napari_viewer()
    widget = WorklistWidget(viewer, data_dir=tmp_path / "data")
    qtbot.addWidget(widget)
    widget.set_models(models)
    panel = widget.node_panel
    panel.port_spin.setValue(free_port())
    panel.store_edit.setText(str(store.root))
    with qtbot.waitSignal(panel.studyTriaged, timeout=30_000):
        assert panel.start_node()
    assert panel.incoming.item(0, 0).text() == "ACC-BEFORE"
    assert panel.incoming.item(0, STATE_COLUMN).text() == "triaged"
    assert widget.row_of(widget.results[0].study_id) == 0
    assert widget.refs[widget.results[0].study_id].study_uid == study_uid
    panel.stop_node()


def test_search_and_retrieve_from_a_pacs(
    template: list[Path], make_napari_viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> None:
    from support.dicom_peers import start_orthanc

    orthanc = start_orthanc(tmp_path / "orthanc", {"elnet": ("ELNET", free_port())})
    try:
        study_uid, files = clone_study(template, tmp_path / "src", "ACC-PACS")
        orthanc.upload(files)
        viewer = make_napari_viewer()
        widget = WorklistWidget(viewer, data_dir=tmp_path / "data")
        qtbot.addWidget(widget)
        widget.set_models(models)
        widget.device_combo.setCurrentText("cpu")
        panel = widget.node_panel
        panel.store_edit.setText(str(tmp_path / "store"))
        panel.remote_edit.setText(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
        panel.accession_edit.setText("ACC-PACS")
        qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.found_table.rowCount() == 1, timeout=30_000)
        assert panel.found_table.item(0, 0).text() == "ACC-PACS"
        assert panel.found_table.item(0, 3).text() == str(len(files))
        assert not panel.retrieve_button.isEnabled()  # nothing selected yet
        panel.found_table.selectRow(0)
        assert panel.retrieve_button.isEnabled()
        good = panel.remote_edit.text()
        panel.remote_edit.setText("ORTHANC at localhost")  # a typo is reported, nothing starts
        panel.retrieve_selected()
        assert "cannot retrieve" in panel.remote_status.text()
        assert panel.retrieve_worker is None
        panel.remote_edit.setText(good)
        # the node is not running: the retrieved study is triaged by the retrieve worker
        with qtbot.waitSignal(panel.studyTriaged, timeout=60_000) as triaged:
            qtbot.mouseClick(panel.retrieve_button, Qt.MouseButton.LeftButton)
        assert triaged.args[0].study == "ACC-PACS"
        assert widget.refs[triaged.args[0].study_id].study_uid == study_uid
        assert len(list((tmp_path / "store" / study_uid).rglob("*.dcm"))) == len(files)
        qtbot.waitUntil(lambda: panel.retrieve_worker is None, timeout=30_000)
    finally:
        orthanc.stop()


def test_results_go_to_the_ae_in_results_to(
    template: list[Path], make_napari_viewer, qtbot, tmp_path: Path, models: list[LoadedModel]
) -> None:
    from support.dicom_peers import start_orthanc

    storescu = require_tool("storescu")
    orthanc = start_orthanc(tmp_path / "orthanc", {})
    try:
        viewer = make_napari_viewer()
        widget = _worklist_with_node_settings(viewer, qtbot, tmp_path, models)
        panel = widget.node_panel
        port = panel.port_spin.value()
        panel.send_edit.setText("ORTHANC at localhost")  # a typo: the node does not start
        assert not panel.start_node()
        assert "expected AET@HOST:PORT" in panel.status.text()
        assert panel.node is None
        panel.send_edit.setText(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.node is not None
        assert f"results to ORTHANC@127.0.0.1:{orthanc.dicom_port}" in panel.status.text()
        assert not panel.send_edit.isEnabled()

        study_uid, _ = clone_study(template, tmp_path / "src", "ACC-SEND")
        sent = subprocess.run(
            [storescu, "-aec", "ELNET", "+sd", "+r", "127.0.0.1", str(port), str(tmp_path / "src")],
            capture_output=True, text=True, timeout=60, env=dcmtk_env(),
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        qtbot.waitUntil(
            lambda: (
                panel.incoming.rowCount() == 1
                and panel.incoming.item(0, STATE_COLUMN).text() == "triaged, sent"
            ),
            timeout=120_000,
        )
        # the PACS holds the results (report, maps, key images) under the received study
        classes = orthanc.sop_classes(study_uid)
        assert sum(c.startswith("1.2.840.10008.5.1.4.1.1.88.") for c in classes) == 1, classes
        assert classes.count("1.2.840.10008.5.1.4.1.1.30") == len(models)  # parametric maps
        assert classes.count("1.2.840.10008.5.1.4.1.1.7") == len(models)  # key images
        panel.stop_node()
        assert panel.send_edit.isEnabled()
    finally:
        orthanc.stop()
