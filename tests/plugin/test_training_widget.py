"""The "ELNet training" widget in a real napari viewer (run under xvfb)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

pytest.importorskip("napari")
from qtpy.QtCore import Qt, QThreadPool
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.models.model_file import load_model
from napari_elnet.plugin.training_widget import TrainingWidget
from napari_elnet.training.session import TrainingOutcome

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MRNet-layout data set: 6 training and 4 validation cases of 3 slices."""
    root = tmp_path_factory.mktemp("training_widget") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0, 1], "valid": [0, 1, 1, 0]}, slices=3)


def _widget(make_napari_viewer, qtbot, data: Path, epochs: int) -> TrainingWidget:
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="ELNet training")
    assert widget.set_data_folder(str(data))
    widget.k_spin.setValue(1)
    widget.epochs_spin.setValue(epochs)
    widget.lr_spin.setValue(1e-3)
    widget.device_combo.setCurrentText("cpu")
    return widget


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_folder_detection_and_task_defaults(make_napari_viewer, data: Path, tmp_path: Path) -> None:
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet training")
    assert isinstance(widget, TrainingWidget)
    assert not widget.set_data_folder(str(tmp_path))
    assert "Not usable" in widget.layout_label.text()
    assert not widget.start()
    assert widget.start_button.text() == "Start"
    assert widget.set_data_folder(str(data))
    assert "MRNet" in widget.layout_label.text()
    tasks = [widget.task_combo.itemText(i) for i in range(widget.task_combo.count())]
    assert sorted(tasks) == ["abnormal", "acl", "meniscus"]
    assert widget.valid_split_check.isEnabled() and not widget.val_fraction_spin.isEnabled()
    widget.task_combo.setCurrentText("meniscus")
    assert (widget.plane_combo.currentText(), widget.norm_combo.currentText()) == (
        "coronal",
        "contrast",
    )
    widget.task_combo.setCurrentText("acl")
    assert (widget.plane_combo.currentText(), widget.norm_combo.currentText()) == ("axial", "layer")
    assert not widget.save_button.isEnabled() and not widget.use_button.isEnabled()


def test_train_use_for_triage_and_save(
    make_napari_viewer, qtbot, data: Path, tmp_path: Path, model_threads: list
) -> None:
    widget = _widget(make_napari_viewer, qtbot, data, epochs=1)
    files_before = sorted(data.rglob("*"))
    with qtbot.waitSignal(widget.trainingFinished, timeout=30_000) as finished:
        _click(qtbot, widget.start_button)
        assert widget.start_button.text() == "Stop"
        assert not widget.k_spin.isEnabled()
    outcome: TrainingOutcome = finished.args[0]
    qtbot.waitUntil(lambda: widget.start_button.text() == "Start", timeout=5_000)
    assert widget.k_spin.isEnabled()

    assert not outcome.stopped and outcome.best_epoch == 1
    assert model_threads and threading.main_thread() not in model_threads  # a worker trained
    assert outcome.path is not None and outcome.path.is_file()
    assert not outcome.path.is_relative_to(data)
    assert sorted(data.rglob("*")) == files_before  # nothing written into the data folder
    loaded = load_model(outcome.path)
    assert (loaded.info.task, loaded.info.plane, loaded.info.k) == ("acl", "axial", 1)
    assert loaded.info.metrics["n"] == 4.0
    cells = [widget.metrics_table.item(0, col).text() for col in range(6)]
    assert cells[0] == "1"
    assert cells[1:] == [
        f"{loaded.info.metrics[k]:.3f}" if not math.isnan(loaded.info.metrics[k]) else "n/a"
        for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "mcc")
    ]
    assert float(cells[1]) == pytest.approx(loaded.info.metrics["accuracy"], abs=1e-3)
    assert len(widget.curve.loss_points) >= 1
    assert [epoch for epoch, _ in widget.curve.auc_points] == [1]
    assert widget.save_button.isEnabled() and widget.use_button.isEnabled()
    assert "epoch 1" in widget.progress.format() or widget.progress.format() == "finished"

    _click(qtbot, widget.use_button)
    dock, triage = widget.viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    # The triage widget loads its default models in a worker; they arrive after the click and
    # must not push ours out.
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(100)
    acl = [m for m in triage.models if m.info.task == "acl"]
    assert [m.path for m in acl] == [outcome.path]
    assert not dock.isHidden()
    _click(qtbot, widget.use_button)  # the open triage widget is reused, not duplicated
    assert widget.viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")[1] is triage
    assert [m.path for m in triage.models if m.info.task == "acl"] == [outcome.path]

    saved = widget.save_model_as(tmp_path / "models" / "acl.pt")
    assert saved == (tmp_path / "models" / "acl.pt").resolve()
    assert load_model(saved).info.metrics == loaded.info.metrics
    assert widget.save_model_as(data / "acl.pt") is None
    assert not (data / "acl.pt").exists()
    assert "inside the input folder" in widget.model_label.text()


def test_stop_keeps_best_checkpoint(make_napari_viewer, qtbot, data: Path) -> None:
    widget = _widget(make_napari_viewer, qtbot, data, epochs=50)
    with qtbot.waitSignal(widget.trainingFinished, timeout=30_000) as finished:
        _click(qtbot, widget.start_button)
        qtbot.waitUntil(lambda: len(widget.curve.auc_points) >= 1, timeout=25_000)
        _click(qtbot, widget.start_button)
        assert widget.progress.format() == "stopping..."
    qtbot.waitUntil(lambda: widget.start_button.text() == "Start", timeout=10_000)
    outcome: TrainingOutcome = finished.args[0]
    assert outcome.stopped
    assert outcome.path is not None and outcome.best_epoch is not None
    assert outcome.best_epoch < 50
    assert load_model(outcome.path).info.provenance["best_epoch"] == outcome.best_epoch
    assert widget.save_button.isEnabled() and widget.use_button.isEnabled()
    assert widget.metrics_table.item(0, 0).text() == str(outcome.best_epoch)


def test_stop_before_first_validation_leaves_no_model(
    make_napari_viewer, qtbot, data: Path
) -> None:
    widget = _widget(make_napari_viewer, qtbot, data, epochs=50)
    with qtbot.waitSignal(widget.trainingFinished, timeout=30_000) as finished:
        _click(qtbot, widget.start_button)
        widget.stop()
    outcome: TrainingOutcome = finished.args[0]
    assert outcome.stopped and outcome.path is None
    qtbot.waitUntil(lambda: widget.start_button.text() == "Start", timeout=2_000)
    assert not widget.save_button.isEnabled() and not widget.use_button.isEnabled()
    assert "no model" in widget.model_label.text()


def test_data_error_is_reported_and_ui_resets(
    make_napari_viewer, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    one_class = write_mrnet(tmp_path / "mrnet", {"train": [0, 0, 0, 0], "valid": [0, 1]})
    widget = _widget(make_napari_viewer, qtbot, one_class, epochs=1)
    with qtbot.waitSignal(widget.trainingFinished, timeout=10_000) as finished:
        _click(qtbot, widget.start_button)
    assert "needs both classes" in finished.args[0].error
    assert errors == [f"ELNet training failed: {finished.args[0].error}"]
    qtbot.waitUntil(lambda: widget.start_button.text() == "Start", timeout=2_000)
    assert widget.progress.format() == "failed"
    assert "needs both classes" in widget.status_label.text()
    assert widget.k_spin.isEnabled() and not widget.save_button.isEnabled()
