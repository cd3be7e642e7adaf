"""DICOM results in napari: a study folder holding them re-opens with heatmaps and the findings table;
the triage widget exports DICOM results."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from support.dicom_results import (
    TriagedStudy,
    dciodvfy,
    not_run,
    triaged_small_phantom,
    write_small_phantom,
)

from napari_elnet.plugin.dicom_results import SOURCE_DICOM, is_saved_result
from napari_elnet.plugin.layers import METADATA_KEY


@pytest.fixture(scope="module")
def reopened(tmp_path_factory: pytest.TempPathFactory) -> TriagedStudy:
    """The session's triaged phantom study copied with its DICOM results inside its folder."""
    from napari_elnet.dicom.results import write_dicom_results

    triaged = triaged_small_phantom()
    root = tmp_path_factory.mktemp("reopen")
    write_dicom_results(triaged.series, triaged.results, triaged.models, root / "results")
    study = write_small_phantom(root / "knee")
    shutil.copytree(root / "results", study / "elnet-results")  # as a PACS export puts them
    return TriagedStudy(study, triaged.series, triaged.results, triaged.models)


def test_reader_adds_a_heatmap_layer_per_saved_map(reopened: TriagedStudy) -> None:
    from napari_elnet.plugin.reader import read_study_layers

    layers = read_study_layers(str(reopened.folder))
    heatmaps = [(d, k) for d, k, _ in layers if k["metadata"][METADATA_KEY]["role"] == "heatmap"]
    assessed = {r.task: r for r in reopened.results if r.probability is not None}
    assert len(layers) - len(heatmaps) == len(reopened.series)
    assert {k["metadata"][METADATA_KEY]["task"] for _, k in heatmaps} == set(assessed)
    for data, kwargs in heatmaps:
        entry = kwargs["metadata"][METADATA_KEY]
        assert entry["source"] == SOURCE_DICOM
        assert is_saved_result(SimpleNamespace(metadata=kwargs["metadata"]))
        original = assessed[entry["task"]]
        np.testing.assert_allclose(data, original.heatmap, atol=1e-6)
        assert entry["result"].top_slice == original.top_slice


def test_opened_study_fills_the_triage_table_and_exports_dicom(
    reopened: TriagedStudy, make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    from napari_elnet.plugin.triage_widget import TriageWidget

    viewer = make_napari_viewer()
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    viewer.window.add_dock_widget(widget)
    viewer.open(str(reopened.folder), plugin="napari-elnet")
    assessed = [r for r in reopened.results if r.probability is not None]
    qtbot.waitUntil(lambda: widget.result_table.rowCount() == len(assessed), timeout=10_000)
    rows = {
        widget.result_table.item(row, 0).text(): widget.result_table.item(row, 1).text()
        for row in range(widget.result_table.rowCount())
    }
    assert rows == {r.task: f"{r.probability:.3f}" for r in assessed}
    shown = widget.results[widget.current_row]
    heatmap = next(layer for layer in viewer.layers if layer.name == f"ELNet {shown.task} heatmap")
    assert heatmap.visible
    assert widget.export_dicom_button.isEnabled()

    widget.set_models(reopened.models)
    written = widget.export_dicom(str(tmp_path / "export"))
    names = sorted(Path(p).name for p in written)
    assert "ELNET_SR.dcm" in names and len(names) == 1 + 2 * len(assessed)
    sr = pydicom.dcmread(tmp_path / "export" / "ELNET_SR.dcm")
    assert sr.StudyInstanceUID == reopened.series[0].study.study_uid
    for path in written:
        assert dciodvfy(Path(path))[0] == [], path


def test_export_into_the_study_folder_is_refused(
    reopened: TriagedStudy, make_napari_viewer, qtbot
) -> None:
    from napari_elnet.plugin.triage_widget import TriageWidget

    viewer = make_napari_viewer()
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    viewer.open(str(reopened.folder), plugin="napari-elnet")
    qtbot.waitUntil(lambda: widget.result_table.rowCount() > 0, timeout=10_000)
    widget.set_models(reopened.models)
    inside = reopened.folder / "sag" / "export"
    assert widget.export_dicom(str(inside)) == []
    assert not inside.exists()


def test_worklist_widget_exports_each_study_in_its_folder(
    make_napari_viewer, qtbot, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from qtpy.QtCore import Qt

    from napari_elnet.models.model_file import ModelInfo, build_model, load_model, save_model
    from napari_elnet.plugin.worklist_widget import WorklistWidget

    root = tmp_path_factory.mktemp("worklist_root")
    write_small_phantom(root / "case_a")
    info = ModelInfo(task="acl", plane="axial", k=1, summary="randomly initialized")
    model = load_model(save_model(tmp_path / "acl.pt", build_model(info), info))
    widget = WorklistWidget(make_napari_viewer(), data_dir=tmp_path / "appdata")
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    widget.set_models([model])
    widget.device_combo.setCurrentText("cpu")
    widget.root_edit.setText(str(root))
    with qtbot.waitSignal(widget.worklistFinished, timeout=60_000):
        qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.export_dicom_button.isEnabled()
    assert not widget.export_dicom(str(root / "inside")), "never inside the root"
    assert not (root / "inside").exists()
    out = tmp_path / "dicom"
    with qtbot.waitSignal(widget.worklistFinished, timeout=60_000):
        assert widget.export_dicom(str(out))
    (study,) = widget.results
    assert sorted(p.name for p in (out / study.study_id).iterdir()) == [
        "ELNET_KEY_acl.dcm", "ELNET_MAP_acl.dcm", "ELNET_SR.dcm",
    ]  # fmt: skip
    assert widget.status.text().startswith("DICOM results of 1 studies written to")


def test_a_task_not_assessed_shows_as_a_row_with_its_reason(
    reopened: TriagedStudy, make_napari_viewer, qtbot, tmp_path: Path
) -> None:

    from napari_elnet.dicom.results import write_dicom_results
    from napari_elnet.plugin.triage_widget import TriageWidget

    study = tmp_path / "knee"
    shutil.copytree(reopened.folder, study, ignore=shutil.ignore_patterns("elnet-results"))
    first, kept = reopened.results[0], reopened.results[1:]
    missing, reason = not_run(first)
    write_dicom_results(reopened.series, [missing, *kept], reopened.models, tmp_path / "results")
    shutil.copytree(tmp_path / "results", study / "elnet-results")
    viewer = make_napari_viewer()
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    viewer.open(str(study), plugin="napari-elnet")
    qtbot.waitUntil(lambda: widget.result_table.rowCount() == len(kept) + 1, timeout=10_000)
    last = widget.result_table.rowCount() - 1
    assert widget.result_table.item(last, 0).text() == first.task
    assert widget.result_table.item(last, 1).text() == f"n/a ({reason})"
    widget.show_result(last)  # nothing to show, nothing breaks
