"""The task table: what it holds, and the shipped models agree with it."""

from __future__ import annotations

import pytest

from napari_elnet.models.defaults import DEFAULT_MODEL_FILES, default_model_paths
from napari_elnet.models.model_file import load_model
from napari_elnet.models.tasks import (
    FALLBACK,
    MRNET_LABELS,
    TASK_TABLE,
    TASKS,
    find_task,
    paper_choice,
)
from napari_elnet.training.config import TrainConfig


def test_the_table_holds_the_papers_choices() -> None:
    rows = [(t.name, t.plane, t.norm) for t in TASK_TABLE]
    assert rows == [
        ("acl", "axial", "layer"),
        ("meniscus", "coronal", "contrast"),
        ("abnormal", "axial", "layer"),
    ]
    assert TASKS == ("acl", "meniscus", "abnormal")
    assert MRNET_LABELS == ("abnormal", "acl", "meniscus")
    assert len({t.model_file for t in TASK_TABLE}) == len(TASK_TABLE)


def test_labels_outside_the_table_fall_back() -> None:
    assert find_task("cartilage") is None
    assert paper_choice("cartilage") == FALLBACK == ("axial", "layer")
    assert paper_choice("meniscus") == ("coronal", "contrast")


def test_training_defaults_follow_the_table() -> None:
    for task in TASK_TABLE:
        config = TrainConfig.for_task(task.name)
        assert (config.task, config.plane, config.norm) == (task.name, task.plane, task.norm)


def test_every_shipped_model_matches_its_row_of_the_table() -> None:
    assert tuple(t.model_file for t in TASK_TABLE) == DEFAULT_MODEL_FILES
    paths = default_model_paths()
    assert [p.name for p in paths] == list(DEFAULT_MODEL_FILES), "a shipped model is missing"
    for path, task in zip(paths, TASK_TABLE, strict=True):
        info = load_model(path).info
        assert (info.task, info.plane, info.norm) == (task.name, task.plane, task.norm), path.name


@pytest.mark.parametrize("task", TASK_TABLE, ids=lambda t: t.name)
def test_the_default_file_name_says_task_and_plane(task: object) -> None:
    assert task.model_file == f"{task.name}_{task.plane}.pt"  # type: ignore[attr-defined]
