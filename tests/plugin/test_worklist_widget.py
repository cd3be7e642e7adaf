"""The "ELNet worklist" widget in a real napari viewer (run under xvfb), and its worker generator."""

from __future__ import annotations

import colorsys
import itertools
import threading
from collections.abc import Generator
from pathlib import Path

import pytest

pytest.importorskip("napari")

from qtpy.QtCore import Qt
from support.synthetic_data import single_thread
from support.worklist_factory import make_models, write_dicom_study

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin import worklist_widget
from napari_elnet.plugin.worklist_jobs import most_suspicious, worklist_run
from napari_elnet.plugin.worklist_widget import (
    GREEN,
    GREY,
    NAME_COLUMN,
    ORANGE,
    RED,
    REVIEWED_COLUMN,
    REVIEWED_LABEL,
    SUSPICION_COLUMN,
    TASK_COLUMN,
    WorklistWidget,
    suspicion_color,
)
from napari_elnet.worklist import Discovery, WorklistProgress

one_thread = pytest.fixture(single_thread, autouse=True)
STUDIES = 4
SLICES = 4


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedModel]:
    folder = tmp_path_factory.mktemp("models")
    return make_models(folder, [("acl", "axial"), ("meniscus", "coronal")])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Four tiny studies with an axial and a coronal series each (two with a bright square)."""
    folder = tmp_path / "root"
    for i in range(STUDIES):
        write_dicom_study(
            folder / f"case{i}",
            f"1.2.826.0.1.3680043.8.498.{300 + i}",
            planes=("axial", "coronal"),
            slices=SLICES,
            accession=f"ACC{i}",
            bright=i % 2 == 1,
        )
    return folder


def _widget(viewer, qtbot, data_dir: Path, models: list[LoadedModel], root: Path):
    widget = WorklistWidget(viewer, data_dir=data_dir)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    widget.set_models(models)  # only these, not the shipped defaults
    widget.device_combo.setCurrentText("cpu")
    widget.root_edit.setText(str(root))
    widget.resize(520, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _run(widget: WorklistWidget, qtbot) -> list:
    with qtbot.waitSignal(widget.worklistFinished, timeout=60_000) as finished:
        qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    return finished.args[0]


def _scores(widget: WorklistWidget) -> list[float]:
    return [
        float(widget.table.item(row, SUSPICION_COLUMN).text())
        for row in range(widget.table.rowCount())
    ]


def test_run_rank_open_a_study_by_double_click_and_remember_a_review(
    make_napari_viewer, qtbot, tmp_path: Path, root: Path, models: list[LoadedModel]
) -> None:
    viewer = make_napari_viewer()
    data_dir = tmp_path / "appdata"
    widget = _widget(viewer, qtbot, data_dir, models, root)
    results = _run(widget, qtbot)
    table = widget.table
    assert table.rowCount() == STUDIES == len(results)
    assert [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())] == [
        REVIEWED_LABEL, "study", "suspicion", "acl", "meniscus", "status",
    ]  # fmt: skip
    assert _scores(widget) == sorted(_scores(widget), reverse=True)
    assert [table.item(r, NAME_COLUMN).text() for r in range(STUDIES)] == [r.study for r in results]
    for row in range(STUDIES):
        assert table.item(row, widget.status_column).text() == "ok"
        for column in (TASK_COLUMN, TASK_COLUMN + 1):
            assert 0.0 <= float(table.item(row, column).text()) <= 1.0
        color = table.item(row, SUSPICION_COLUMN).background().color()
        expected = suspicion_color(results[row].suspicion)
        assert (color.red(), color.green(), color.blue()) == expected
    assert widget.progress.format().startswith(f"done: {STUDIES} studies")

    # double-click the third row: its study opens with series, heatmaps and the top slice
    row = 2
    target = results[row]
    rect = table.visualItemRect(table.item(row, NAME_COLUMN))
    with qtbot.waitSignal(widget.studyOpened, timeout=30_000) as opened_signal:
        # Qt 6 item views open on a double-click only after the press of its first click
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    opened = opened_signal.args[0]
    assert opened.ref.study_id == target.study_id
    series = actions.series_layers(viewer)
    assert sorted(layer.metadata["napari_elnet"]["plane"] for layer in series) == [
        "axial",
        "coronal",
    ]
    heatmaps = [layer for layer in viewer.layers if actions.role(layer) == "heatmap"]
    assert sorted(h.name for h in heatmaps) == ["ELNet acl heatmap", "ELNet meniscus heatmap"]
    for result in opened.results:
        layer = series[result.series_index]
        heatmap = actions.find_heatmap(viewer, result.task)
        assert heatmap.data.shape == layer.data.shape == (SLICES, 32, 32)
    # the reopened triage agrees with the worklist row, and the viewer shows the top slice
    assert [(t.task, t.top_slice) for t in target.tasks] == [
        (r.task, r.top_slice) for r in opened.results
    ]
    best = opened.results[most_suspicious(opened.results)]
    shown = series[best.series_index]
    assert shown.visible and actions.find_heatmap(viewer, best.task).visible
    assert actions.data_slice(viewer, shown) == best.top_slice
    assert table.item(row, NAME_COLUMN).font().bold()

    # opening another study replaces the worklist layers, never the user's own
    user_layer = viewer.add_image(series[0].data.copy(), name="user layer")
    with qtbot.waitSignal(widget.studyOpened, timeout=30_000):
        widget.open_row(0)
    assert "user layer" in [layer.name for layer in viewer.layers]
    assert len(actions.series_layers(viewer)) == 3  # two of the new study + the user's
    assert user_layer in viewer.layers

    # a review mark is remembered by a new widget on the same data folder
    top_id = results[0].study_id
    table.item(0, REVIEWED_COLUMN).setCheckState(Qt.CheckState.Checked)
    assert widget.is_reviewed(top_id)
    assert (data_dir / "reviewed.json").is_file()
    again = _widget(viewer, qtbot, data_dir, models, root)
    _run(again, qtbot)
    checks = {
        again.table.item(r, NAME_COLUMN).data(Qt.ItemDataRole.UserRole): again.table.item(
            r, REVIEWED_COLUMN
        ).checkState()
        for r in range(STUDIES)
    }
    assert checks.pop(top_id) == Qt.CheckState.Checked
    assert set(checks.values()) == {Qt.CheckState.Unchecked}

    # the report goes anywhere but into the root folder
    assert again.export_report(tmp_path / "out" / "worklist.csv") is not None
    assert again.export_report(root / "worklist.csv") is None
    assert not (root / "worklist.csv").exists()


def test_stop_keeps_the_finished_rows_and_start_continues(
    make_napari_viewer,
    qtbot,
    tmp_path: Path,
    root: Path,
    models: list[LoadedModel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gates: list[bool] = []

    def gated(*args: object) -> Generator[object, None, object]:
        """The real run, holding after its first study of the first run until Stop is clicked."""
        cancel: threading.Event = args[-1]  # type: ignore[assignment]
        inner = worklist_run(*args)  # type: ignore[arg-type]
        try:
            while True:
                try:
                    item = next(inner)
                except StopIteration as stop:
                    return stop.value
                yield item
                if not gates and isinstance(item, WorklistProgress) and item.result is not None:
                    gates.append(cancel.wait(10))
        finally:
            inner.close()

    monkeypatch.setattr(worklist_widget, "worklist_run", gated)
    widget = _widget(make_napari_viewer(), qtbot, tmp_path / "appdata", models, root)
    widget.studyAdded.connect(
        lambda _r: (
            qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
            if widget.worker is not None and widget.start_button.text() == "Stop" and not gates
            else None
        )
    )
    kept = _run(widget, qtbot)
    assert gates == [True]  # Stop reached the worker while it held
    assert len(kept) == widget.table.rowCount() == 1
    assert widget.progress.format().startswith("stopped: 1 studies done")
    assert widget.start_button.text() == "Start"
    assert widget.export_button.isEnabled()
    everything = _run(widget, qtbot)  # Start again: the run continues, rows are not repeated
    assert sorted(r.study for r in everything) == [f"ACC{i}" for i in range(STUDIES)]
    assert {r.study_id for r in kept} <= {r.study_id for r in everything}
    assert _scores(widget) == sorted(_scores(widget), reverse=True)


def test_worklist_run_yields_discovery_then_every_result_and_stops_on_cancel(
    root: Path, models: list[LoadedModel]
) -> None:
    cancel = threading.Event()
    steps = worklist_run(root, models, "cpu", (), cancel)
    discovery = next(steps)
    assert isinstance(discovery, Discovery) and len(discovery.studies) == STUDIES
    results = []
    for progress in steps:
        assert isinstance(progress, WorklistProgress)
        assert (progress.result is not None) == (progress.stage == "study")
        if progress.result is not None:
            results.append(progress.result)
            cancel.set()  # stop after the first study
    assert [r.status for r in results] == ["ok"]
    assert results[0].phi.patient_name == "" and results[0].folders == ()  # no PHI by default


def test_suspicion_colour_runs_from_green_through_orange_to_red() -> None:
    assert suspicion_color(0.0) == GREEN
    assert suspicion_color(0.5) == ORANGE
    assert suspicion_color(1.0) == RED
    assert suspicion_color(None) == GREY
    hues = [colorsys.rgb_to_hsv(*(c / 255 for c in suspicion_color(s / 20)))[0] for s in range(21)]
    assert all(a > b for a, b in itertools.pairwise(hues))  # warmer with every step


def test_a_study_triaged_again_moves_to_its_new_rank(make_napari_viewer, qtbot, tmp_path) -> None:
    from napari_elnet.worklist import StudyResult
    from napari_elnet.worklist.discovery import StudyRef

    widget = WorklistWidget(make_napari_viewer(), data_dir=tmp_path)
    qtbot.addWidget(widget)
    widget.refs["dicom-a"] = StudyRef("dicom-a", "A", "dicom", ())
    widget.add_result(StudyResult("dicom-a", "A", "ok", suspicion=0.9))
    widget.add_result(StudyResult("dicom-b", "B", "ok", suspicion=0.5))
    widget.set_reviewed("dicom-a", True)
    widget.replace_result(StudyResult("dicom-a", "A", "ok", suspicion=0.1))  # late series arrived
    assert not widget.is_reviewed("dicom-a")  # what was reviewed was the old result
    names = [widget.table.item(r, NAME_COLUMN).text() for r in range(widget.table.rowCount())]
    assert names == ["B", "A"]
    assert [r.suspicion for r in widget.results] == [0.5, 0.1]
    assert widget.table.item(1, SUSPICION_COLUMN).text() == "0.100"
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)


def test_error_rows_are_grey_and_ranked_last(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    from napari_elnet.worklist import StudyResult

    widget = WorklistWidget(make_napari_viewer(), data_dir=tmp_path)
    qtbot.addWidget(widget)
    widget.add_result(StudyResult("dicom-b", "BAD", "error", reason="no usable image series"))
    widget.add_result(StudyResult("dicom-l", "LOW", "ok", suspicion=0.2))
    widget.add_result(StudyResult("dicom-h", "HIGH", "ok", suspicion=0.9))
    names = [widget.table.item(r, NAME_COLUMN).text() for r in range(3)]
    assert names == ["HIGH", "LOW", "BAD"]
    assert widget.table.item(2, widget.status_column).toolTip() == "no usable image series"
    grey = widget.table.item(2, NAME_COLUMN).foreground().color()
    assert (grey.red(), grey.green(), grey.blue()) == GREY
    cue = widget.table.item(2, SUSPICION_COLUMN).background().color()
    assert (cue.red(), cue.green(), cue.blue()) == GREY
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
