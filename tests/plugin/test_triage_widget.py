"""The "ELNet triage" widget in a real napari viewer (run under xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
import itertools

from qtpy.QtCore import Qt

from napari_elnet.models.model_file import ModelInfo, build_model, save_model
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin.triage_widget import TriageWidget


@pytest.fixture
def sagittal_model(tmp_path: Path) -> Path:
    info = ModelInfo(task="acl", plane="sagittal", k=2, summary="random test weights")
    return save_model(tmp_path / "models" / "acl_sag.pt", build_model(info, seed=0), info)


def _use_only(widget: TriageWidget, paths: list[Path]) -> None:
    """Replace whatever models the widget has (the shipped defaults) with these files."""
    from napari_elnet.models.model_file import load_model

    widget.set_models([load_model(path) for path in paths])


def _widget(viewer, qtbot) -> TriageWidget:
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    return widget


def _knee_with(make_napari_viewer, qtbot, knee_dir: Path, paths: list[Path]):
    """(viewer, the real knee's layer, a triage widget using only the model files ``paths``)."""
    viewer = make_napari_viewer()
    (layer,) = viewer.open(knee_dir, plugin="napari-elnet")
    widget = _widget(viewer, qtbot)
    _use_only(widget, paths)
    return viewer, layer, widget


def _click_run(widget: TriageWidget, qtbot) -> list:
    """Click Run and wait for the results."""
    with qtbot.waitSignal(widget.triageFinished, timeout=60_000) as finished:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    return finished.args[0]


def test_open_real_knee_and_triage_by_clicking_run(
    knee_dir: Path, make_napari_viewer, qtbot, sagittal_model: Path
) -> None:
    viewer = make_napari_viewer()
    layers = viewer.open(knee_dir, plugin="napari-elnet")
    (layer,) = layers
    assert layer.data.shape == (20, 512, 512)
    np.testing.assert_allclose(layer.scale, (1.5, 0.3125, 0.3125), rtol=1e-3)
    widget = _widget(viewer, qtbot)
    _use_only(widget, [sagittal_model])
    assert widget.series_combo(0).currentText() == layer.name
    (result,) = _click_run(widget, qtbot)
    heatmap = actions.find_heatmap(viewer, "acl")
    assert heatmap is not None
    assert heatmap.data.shape == layer.data.shape
    np.testing.assert_allclose(heatmap.scale, layer.scale)
    assert float(heatmap.data.min()) >= 0.0 and float(heatmap.data.max()) <= 1.0
    assert tuple(heatmap.contrast_limits) == (0.0, 1.0)
    assert actions.data_slice(viewer, layer) == result.top_slice
    assert widget.result_table.rowCount() == 1
    assert widget.result_table.item(0, 3).text() == str(result.top_slice)


@pytest.fixture
def three_models(tmp_path: Path) -> list[Path]:
    paths = []
    for seed, task in enumerate(("acl", "meniscus", "abnormal")):
        info = ModelInfo(task=task, plane="sagittal", k=4, summary="random test weights")
        paths.append(
            save_model(tmp_path / "models" / f"{task}.pt", build_model(info, seed=seed), info)
        )
    return paths


def test_cancel_mid_run_leaves_no_half_made_layers(
    knee_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    import time

    viewer, _, widget = _knee_with(make_napari_viewer, qtbot, knee_dir, three_models)
    layers_before = [layer.name for layer in viewer.layers]
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.run_button.text() == "Cancel"
    start = time.perf_counter()
    with qtbot.waitSignal(widget.worker.finished, timeout=5_000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert time.perf_counter() - start < 1.0
    assert widget.run_button.text() == "Run"
    assert [layer.name for layer in viewer.layers] == layers_before
    assert widget.result_table.rowCount() == 0
    assert widget.progress.format() == "cancelled"


def test_event_loop_never_stalls_during_a_run(
    knee_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    """A probe timer measures the longest gap between event-loop turns during triage."""
    import time

    from qtpy.QtCore import QTimer

    viewer, _, widget = _knee_with(make_napari_viewer, qtbot, knee_dir, three_models)
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()
    _click_run(widget, qtbot)
    qtbot.wait(50)
    probe.stop()
    longest = max(b - a for a, b in itertools.pairwise(ticks))
    assert len(ticks) > 20
    assert longest < 0.25, f"event loop stalled for {longest * 1e3:.0f} ms"
    assert len([layer for layer in viewer.layers if actions.role(layer) == "heatmap"]) == 3


def test_running_again_replaces_heatmaps_and_rows_navigate(
    knee_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    viewer, layer, widget = _knee_with(make_napari_viewer, qtbot, knee_dir, three_models[:2])
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


def test_a_model_chosen_while_defaults_load_is_kept(
    make_napari_viewer, qtbot, sagittal_model: Path
) -> None:
    widget = TriageWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    widget.use_model_file(str(sagittal_model))  # before the default models have arrived
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    assert [m.path for m in widget.models if m.info.task == "acl"] == [sagittal_model]


def test_the_shown_result_has_its_heatmap_visible(
    knee_dir: Path, make_napari_viewer, qtbot, three_models: list[Path]
) -> None:
    viewer, _, widget = _knee_with(make_napari_viewer, qtbot, knee_dir, three_models)
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
    assert shown.probability == max(r.probability for r in results)
    assert by_name[f"ELNet {shown.task} heatmap"].visible
    assert actions.data_slice(viewer, by_name[shown.series_name]) == shown.top_slice
    widget.opacity_slider.setValue(20)
    assert [round(by_name[f"ELNet {r.task} heatmap"].opacity, 2) for r in results] == [0.2] * 3
