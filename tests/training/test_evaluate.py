"""Evaluation: Table 2 metrics per task, splits, default models, refusal of unfit models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.datasets import open_dataset
from napari_elnet.models.model_file import ModelInfo, build_model, load_model, save_model
from napari_elnet.training.evaluate import TABLE_COLUMNS, evaluate, evaluate_steps
from napari_elnet.training.metrics import binary_metrics
from napari_elnet.transforms.intensity import Landmarks
from napari_elnet.transforms.preprocess import prepare_volume

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0], "valid": [0, 1, 1, 0, 1]}, slices=2, size=32)


def _model(folder: Path, task: str, plane: str = "axial", seed: int = 0) -> Path:
    info = ModelInfo(
        task=task, plane=plane, k=1, landmarks=Landmarks((1.0, 50.0, 99.0), (0.0, 0.3, 1.0))
    )
    return save_model(folder / f"{task}.pt", build_model(info, seed=seed), info)


def test_metrics_match_the_models_own_predictions(data: Path, tmp_path: Path) -> None:
    loaded = load_model(_model(tmp_path, "acl"))
    evaluation = evaluate(data, [loaded], device="cpu")
    assert evaluation.split == "valid"
    result = evaluation.tasks["acl"]
    valid = open_dataset(data, "acl", "axial", "valid")
    with torch.no_grad():
        expected = [
            float(
                torch.softmax(loaded.model(prepare_volume(c.volume(), loaded.info.landmarks)), 0)[1]
            )
            for c in valid
        ]
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-6)
    assert result.case_ids == ("0003", "0004", "0005", "0006", "0007")
    assert result.metrics == binary_metrics(valid.labels, expected, 0.5)
    record = evaluation.records()["acl"]
    assert tuple(record) == TABLE_COLUMNS
    assert record["n"] == 5 and isinstance(record["n"], int)


def test_split_all_and_train(data: Path, tmp_path: Path) -> None:
    loaded = load_model(_model(tmp_path, "meniscus", "coronal"))
    assert evaluate(data, [loaded], split=None, device="cpu").tasks["meniscus"].metrics["n"] == 8
    assert evaluate(data, [loaded], split="train", device="cpu").tasks["meniscus"].metrics["n"] == 3


def test_progress_per_case(data: Path, tmp_path: Path) -> None:
    models = [load_model(_model(tmp_path, "acl")), load_model(_model(tmp_path, "abnormal"))]
    progress = list(evaluate_steps(data, models, device="cpu"))
    assert [(p.task, p.step, p.steps) for p in progress][:2] == [("acl", 1, 5), ("acl", 2, 5)]
    assert len(progress) == 10


def test_default_models_skip_what_the_data_lacks(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m").mkdir()
    models = [load_model(_model(tmp_path / "m", "acl")), load_model(_model(tmp_path / "m", "pcl"))]
    monkeypatch.setattr("napari_elnet.models.defaults.load_default_models", lambda: models)
    evaluation = evaluate(data, device="cpu")
    assert list(evaluation.tasks) == ["acl"]
    (reason,) = evaluation.skipped
    assert "no labels for task 'pcl'" in reason


def test_given_models_that_do_not_fit_are_refused(data: Path, tmp_path: Path) -> None:
    pcl = load_model(_model(tmp_path, "pcl"))
    with pytest.raises(ConfigurationError, match="no labels for task 'pcl'"):
        evaluate(data, [pcl], device="cpu")
    twice = [load_model(_model(tmp_path, "acl")), load_model(_model(tmp_path, "acl", seed=1))]
    with pytest.raises(ConfigurationError, match="each task needs exactly one model"):
        evaluate(data, twice, device="cpu")
