"""The models row shared by the triage and worklist widgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_elnet.models.model_file import ModelInfo, build_model, save_model
from napari_elnet.plugin.model_picker import LOADING, ModelPicker

pytest.importorskip("napari")


def _model_file(folder: Path, task: str) -> Path:
    info = ModelInfo(task=task, plane="sagittal", k=1, summary="random test weights")
    return save_model(folder / f"{task}.pt", build_model(info, seed=0), info)


def test_a_pick_replaces_its_task_and_survives_the_defaults_arriving(qtbot, tmp_path: Path) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    mine = _model_file(tmp_path, "acl")
    picker.use_model_file(mine)  # usually before the defaults have loaded
    qtbot.waitUntil(lambda: picker.ready, timeout=30_000)
    assert LOADING not in picker.status.text()
    tasks = [m.info.task for m in picker.models()]
    assert tasks.count("acl") == 1
    assert next(m for m in picker.models() if m.info.task == "acl").path == mine
    assert "acl/sagittal" in picker.status.text()


def test_default_models_forget_the_picks(qtbot, tmp_path: Path) -> None:
    picker = ModelPicker(several=True)
    qtbot.addWidget(picker)
    qtbot.waitUntil(lambda: picker.ready, timeout=30_000)
    defaults = [m.path for m in picker.models()]
    picker.use_model_file(_model_file(tmp_path, "acl"))
    assert [m.path for m in picker.models()] != defaults
    with qtbot.waitSignal(picker.modelsChanged, timeout=30_000):
        picker.use_default_models()
    assert [m.path for m in picker.models()] == defaults


def test_a_broken_file_is_reported_and_changes_nothing(qtbot, tmp_path: Path) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    qtbot.waitUntil(lambda: picker.ready, timeout=30_000)
    before = picker.models()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a model")
    picker.use_model_file(broken)
    assert picker.models() == before


def test_running_disables_the_buttons(qtbot) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_running(True)
    assert not picker.defaults_button.isEnabled() and not picker.file_button.isEnabled()
    picker.set_running(False)
    assert picker.defaults_button.isEnabled() and picker.file_button.isEnabled()
