"""The "ELNet triage" widget in a real napari viewer (run under xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
from qtpy.QtCore import Qt  # noqa: E402

from napari_elnet.model_file import ModelInfo, build_model, save_model  # noqa: E402
from napari_elnet.plugin import viewer_actions as actions  # noqa: E402
from napari_elnet.plugin.triage_widget import TriageWidget  # noqa: E402


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
