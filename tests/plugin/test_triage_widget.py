"""The "ELNet triage" widget in a real napari viewer (run under xvfb).

The tests run on a generated phantom knee written as DICOM (``phantom_dir``), so they run on a
clean clone; the real-knee variant is an extra that skips without ``../shared/data``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
from qtpy.QtCore import Qt

from napari_elnet.models.model_file import ModelInfo, build_model, save_model
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin.triage_widget import TriageWidget
from napari_elnet.worklist.suspicion import most_suspicious


@pytest.fixture
def sagittal_model(tmp_path: Path) -> Path:
    info = ModelInfo(task="acl", plane="sagittal", k=2, summary="random test weights")
    return save_model(tmp_path / "models" / "acl_sag.pt", build_model(info, seed=0), info)


@pytest.fixture
def three_models(tmp_path: Path) -> list[Path]:
    paths = []
    for seed, task in enumerate(("acl", "meniscus", "abnormal")):
        info = ModelInfo(task=task, plane="sagittal", k=4, summary="random test weights")
        paths.append(
            save_model(tmp_path / "models" / f"{task}.pt", build_model(info, seed=seed), info)
        )
    return paths


def _use_only(widget: TriageWidget, paths: list[Path]) -> None:
    """Replace whatever models the widget has (the shipped defaults) with these files."""
    from napari_elnet.models.model_file import load_model

    widget.set_models([load_model(path) for path in paths])


def _widget(viewer, qtbot) -> TriageWidget:
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    return widget


def _study_with(make_napari_viewer, qtbot, folder: Path, paths: list[Path]):
    """(viewer, the study's series layers, a triage widget using only the model files ``paths``)."""
    viewer = make_napari_viewer()
    layers = viewer.open(folder, plugin="napari-elnet")
    widget = _widget(viewer, qtbot)
    _use_only(widget, paths)
    return viewer, layers, widget


def _by_plane(layers: list, plane: str):
    (layer,) = [lay for lay in layers if actions.series_of_layer(lay).plane == plane]
    return layer


def _click_run(widget: TriageWidget, qtbot) -> list:
    """Click Run and wait for the results."""
    with qtbot.waitSignal(widget.triageFinished, timeout=60_000) as finished:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    return finished.args[0]


def _check_heatmap_over(viewer, layer, result) -> None:
    """The result's heatmap lies exactly over ``layer`` in 0..1; the viewer shows its top slice."""
    heatmap = actions.find_heatmap(viewer, result.task)
    assert heatmap is not None
    assert heatmap.data.shape == layer.data.shape
    np.testing.assert_allclose(heatmap.scale, layer.scale)
    assert float(heatmap.data.min()) >= 0.0 and float(heatmap.data.max()) <= 1.0
    assert tuple(heatmap.contrast_limits) == (0.0, 1.0)
    assert actions.data_slice(viewer, layer) == result.top_slice


def test_open_phantom_study_and_triage_by_clicking_run(
    phantom_dir: Path, make_napari_viewer, qtbot, sagittal_model: Path
) -> None:
    viewer, layers, widget = _study_with(make_napari_viewer, qtbot, phantom_dir, [sagittal_model])
    planes = sorted(actions.series_of_layer(lay).plane for lay in layers)
    assert planes == ["axial", "coronal", "sagittal"]
    sagittal = _by_plane(layers, "sagittal")
    assert sagittal.data.shape == (16, 128, 128)
    assert widget.series_combo(0).currentText() == sagittal.name  # chosen by the model's plane
    (result,) = _click_run(widget, qtbot)
    assert result.series_name == sagittal.name
    _check_heatmap_over(viewer, sagittal, result)
    assert widget.result_table.rowCount() == 1
    assert widget.result_table.item(0, 3).text() == str(result.top_slice)


def test_open_real_knee_and_triage_by_clicking_run(
    knee_dir: Path, make_napari_viewer, qtbot, sagittal_model: Path
) -> None:
    """The same on the real sagittal DESS knee of ../shared/data (skipped without it)."""
    viewer, layers, widget = _study_with(make_napari_viewer, qtbot, knee_dir, [sagittal_model])
    (layer,) = layers
    assert layer.data.shape == (20, 512, 512)
    np.testing.assert_allclose(layer.scale, (1.5, 0.3125, 0.3125), rtol=1e-3)
    assert widget.series_combo(0).currentText() == layer.name
    (result,) = _click_run(widget, qtbot)
    _check_heatmap_over(viewer, layer, result)
    assert widget.result_table.rowCount() == 1
    assert widget.result_table.item(0, 3).text() == str(result.top_slice)


def test_the_models_run_on_a_worker_thread_never_on_the_gui_thread(
    phantom_dir: Path, make_napari_viewer, qtbot, three_models: list[Path], model_threads: list
) -> None:
    """The property behind a responsive viewer (the stalls themselves are timed in bench_gui.py)."""
    viewer, _, widget = _study_with(make_napari_viewer, qtbot, phantom_dir, three_models)
    model_threads.clear()
    results = _click_run(widget, qtbot)
    assert len(results) == 3 and len(model_threads) >= 3
    assert threading.main_thread() not in model_threads
    assert len([layer for layer in viewer.layers if actions.role(layer) == "heatmap"]) == 3


def test_cancel_stops_at_the_next_stage_and_leaves_no_half_made_layers(
    phantom_dir: Path,
    make_napari_viewer,
    qtbot,
    three_models: list[Path],
    model_threads: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from napari_elnet.inference import triage

    viewer, _, widget = _study_with(make_napari_viewer, qtbot, phantom_dir, three_models)
    real_steps = triage.triage_steps
    stages: list[str] = []
    gate: list[bool] = []

    def held(*args: object) -> Generator[object, None, object]:
        """The real triage, holding before its first stage's work until Cancel is clicked."""
        inner = real_steps(*args)  # type: ignore[arg-type]
        try:
            while True:
                try:
                    progress = next(inner)
                except StopIteration as stop:
                    return stop.value
                stages.append(f"{progress.task} {progress.stage}")
                yield progress
                if not gate:
                    gate.append(widget._cancel.wait(10))
        finally:
            inner.close()

    monkeypatch.setattr(triage, "triage_steps", held)
    layers_before = [layer.name for layer in viewer.layers]
    model_threads.clear()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.run_button.text() == "Cancel"
    qtbot.waitUntil(lambda: bool(stages), timeout=10_000)
    with qtbot.waitSignal(widget.worker.finished, timeout=30_000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert gate == [True]  # Cancel reached the worker while it held
    # the stage in progress (the first task's preparation) finished; no later stage started
    assert stages == ["acl prepare", "acl explain"]
    assert model_threads == []  # not one model ran
    assert widget.run_button.text() == "Run"
    assert [layer.name for layer in viewer.layers] == layers_before
    assert widget.result_table.rowCount() == 0
    assert widget.progress.format() == "cancelled"


def test_running_again_replaces_heatmaps_and_rows_navigate(
    phantom_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    viewer, layers, widget = _study_with(make_napari_viewer, qtbot, phantom_dir, three_models[:2])
    layer = _by_plane(layers, "sagittal")
    for run in range(2):
        _click_run(widget, qtbot)
        if run == 0:  # a display setting the user changed survives the next run
            actions.find_heatmap(viewer, "acl").colormap = "viridis"
    assert actions.find_heatmap(viewer, "acl").colormap.name == "viridis"
    np.testing.assert_array_equal(
        actions.find_heatmap(viewer, "acl").data, widget.results[0].heatmap
    )
    heatmaps = [lay for lay in viewer.layers if actions.role(lay) == "heatmap"]
    assert sorted(h.name for h in heatmaps) == ["ELNet acl heatmap", "ELNet meniscus heatmap"]
    for row, result in enumerate(widget.results):
        widget.go_to_slice(0)
        widget.show_result(row)
        assert actions.data_slice(viewer, layer) == result.top_slice
        order = np.argsort(-result.relevance, kind="stable")
        widget.step_informative(+1)
        assert actions.data_slice(viewer, layer) == int(order[1])
        widget.step_informative(-1)
        assert actions.data_slice(viewer, layer) == int(order[0])
    widget.profile.sliceClicked.emit(3)
    assert actions.data_slice(viewer, layer) == 3


def test_a_model_whose_plane_is_missing_is_not_run_unless_the_user_picks_a_series(
    phantom_dir: Path, make_napari_viewer, qtbot, sagittal_model: Path, tmp_path: Path
) -> None:
    info = ModelInfo(task="meniscus", plane="axial", k=2, summary="random test weights")
    axial_model = save_model(tmp_path / "models" / "men_ax.pt", build_model(info, seed=1), info)
    viewer, layers, widget = _study_with(
        make_napari_viewer, qtbot, phantom_dir, [sagittal_model, axial_model]
    )
    viewer.layers.remove(_by_plane(layers, "axial"))
    assert widget.series_combo(1).currentText() == "(no axial series: not run)"
    sagittal, missing = _click_run(widget, qtbot)
    assert sagittal.probability is not None
    assert missing.probability is None and missing.heatmap is None and missing.top_slice is None
    assert actions.find_heatmap(viewer, "meniscus") is None
    cells = [widget.result_table.item(1, col) for col in range(4)]
    assert [c.text() for c in cells] == ["meniscus", "n/a (no axial series)", "not applicable", "-"]
    assert all(c.foreground().color().name() == "#808080" for c in cells)  # greyed
    widget.show_result(1)  # nothing to show, nothing breaks
    # The user may still run it on another series explicitly: marked outside the plane.
    widget.series_combo(1).setCurrentText(_by_plane(layers, "sagittal").name)
    _, forced = _click_run(widget, qtbot)
    assert forced.applicability.outside_plane and forced.probability is not None
    assert widget.result_table.item(1, 0).text() == "meniscus (outside plane)"
    assert "outside the model's plane" in widget.result_table.item(1, 1).toolTip()


def test_a_model_chosen_while_defaults_load_is_kept(
    make_napari_viewer, qtbot, sagittal_model: Path
) -> None:
    widget = TriageWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    widget.use_model_file(str(sagittal_model))  # before the default models have arrived
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    assert [m.path for m in widget.models if m.info.task == "acl"] == [sagittal_model]


def test_the_shown_result_has_its_heatmap_visible(
    phantom_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    viewer, _, widget = _study_with(make_napari_viewer, qtbot, phantom_dir, three_models)
    _click_run(widget, qtbot)
    for row, result in enumerate(widget.results):
        widget.show_result(row)
        visible = [
            lay.name for lay in viewer.layers if lay.visible and actions.role(lay) == "heatmap"
        ]
        assert visible == [f"ELNet {result.task} heatmap"]


def test_phantom_sample_with_default_models_through_the_plugin_menu(
    make_napari_viewer, qtbot
) -> None:
    """As a user does it: sample data, Plugins > ELNet triage (napari's proxy viewer), Run."""
    from napari_elnet.models.defaults import default_model_paths

    if len(default_model_paths()) != 3:
        pytest.skip("the default models do not ship with this build")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-elnet", "knee_phantom")
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    assert widget.banner.isVisibleTo(widget)  # demonstration weights are announced
    with qtbot.waitSignal(widget.triageFinished, timeout=120_000) as finished:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    results = finished.args[0]
    assert sorted(r.task for r in results) == ["abnormal", "acl", "meniscus"]
    assert widget.result_table.rowCount() == 3
    by_name = {layer.name: layer for layer in viewer.layers}
    for result in results:
        heatmap = by_name[f"ELNet {result.task} heatmap"]
        series = by_name[result.series_name]
        assert heatmap.data.shape == series.data.shape
        np.testing.assert_allclose(heatmap.scale, series.scale)
        assert float(heatmap.data.min()) >= 0.0 and float(heatmap.data.max()) <= 1.0
    shown = results[widget.current_row]
    assert widget.current_row == most_suspicious(results)  # the worklist's rule
    assert by_name[f"ELNet {shown.task} heatmap"].visible
    assert actions.data_slice(viewer, by_name[shown.series_name]) == shown.top_slice
    widget.opacity_slider.setValue(20)
    assert [round(by_name[f"ELNet {r.task} heatmap"].opacity, 2) for r in results] == [0.2] * 3
