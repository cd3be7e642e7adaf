"""Which model each task uses."""

from __future__ import annotations

from pathlib import Path

from napari_elnet.models.choice import ModelChoice
from napari_elnet.models.model_file import LoadedModel, ModelInfo, build_model


def _model(task: str, plane: str, name: str) -> LoadedModel:
    return LoadedModel(
        build_model(ModelInfo(task=task, plane=plane, k=1)),
        ModelInfo(task=task, plane=plane, k=1),
        Path(name),
    )


def test_picks_win_over_defaults_that_arrive_later() -> None:
    choice = ModelChoice()
    mine = _model("acl", "sagittal", "mine.pt")
    choice.pick(mine)
    assert choice.models() == [mine]
    defaults = [_model("acl", "axial", "d_acl.pt"), _model("abnormal", "axial", "d_abn.pt")]
    choice.defaults = defaults
    assert [m.path.name for m in choice.models()] == ["d_abn.pt", "mine.pt"]


def test_forget_picks_goes_back_to_the_defaults() -> None:
    defaults = [_model("acl", "axial", "d_acl.pt")]
    choice = ModelChoice(defaults=defaults)
    choice.pick(_model("acl", "axial", "mine.pt"))
    choice.forget_picks()
    assert choice.models() == defaults
