"""The "ELNet triage" widget in a real napari viewer (run under xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
import itertools

from qtpy.QtCore import Qt

from napari_elnet.model_file import ModelInfo, build_model, save_model
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin.triage_widget import TriageWidget


@pytest.fixture
def sagittal_model(tmp_path: Path) -> Path:
    info = ModelInfo(task="acl", plane="sagittal", k=2, summary="random test weights")
    return save_model(tmp_path / "models" / "acl_sag.pt", build_model(info, seed=0), info)


def _widget(viewer, qtbot) -> TriageWidget:
    widget = TriageWidget(viewer)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: "loading" not in widget.model_status.text(), timeout=30_000)
    return widget


def test_open_real_knee_and_triage_by_clicking_run(
    make_napari_viewer, qtbot, knee_dir: Path, sagittal_model: Path
) -> None:
    viewer = make_napari_viewer()
    layers = viewer.open(knee_dir, plugin="napari-elnet")
    (layer,) = layers
    assert layer.data.shape == (20, 512, 512)
    np.testing.assert_allclose(layer.scale, (1.5, 0.3125, 0.3125), rtol=1e-3)
    widget = _widget(viewer, qtbot)
    widget.use_model_file(str(sagittal_model))
    assert widget.series_combo(0).currentText() == layer.name
    with qtbot.waitSignal(widget.triageFinished, timeout=60_000) as finished:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    (result,) = finished.args[0]
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
    make_napari_viewer, qtbot, knee_dir: Path, three_models: list[Path]
) -> None:
    import time

    viewer = make_napari_viewer()
    viewer.open(knee_dir, plugin="napari-elnet")
    widget = _widget(viewer, qtbot)
    for path in three_models:
        widget.use_model_file(str(path))
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
    make_napari_viewer, qtbot, knee_dir: Path, three_models: list[Path]
) -> None:
    """A probe timer measures the longest gap between event-loop turns during triage."""
    import time

    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    viewer.open(knee_dir, plugin="napari-elnet")
    widget = _widget(viewer, qtbot)
    for path in three_models:
        widget.use_model_file(str(path))
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()
    with qtbot.waitSignal(widget.triageFinished, timeout=60_000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    probe.stop()
    longest = max(b - a for a, b in itertools.pairwise(ticks))
    assert len(ticks) > 20
    assert longest < 0.25, f"event loop stalled for {longest * 1e3:.0f} ms"
    assert len([layer for layer in viewer.layers if actions.role(layer) == "heatmap"]) == 3


def test_running_again_replaces_heatmaps_and_rows_navigate(
    make_napari_viewer, qtbot, knee_dir: Path, three_models: list[Path]
) -> None:
    viewer = make_napari_viewer()
    (layer,) = viewer.open(knee_dir, plugin="napari-elnet")
    widget = _widget(viewer, qtbot)
    for path in three_models[:2]:
        widget.use_model_file(str(path))
    for _ in range(2):
        with qtbot.waitSignal(widget.triageFinished, timeout=60_000):
            qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
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
