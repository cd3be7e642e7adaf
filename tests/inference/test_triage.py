"""Triage pipeline on generated series with saved (randomly initialized) models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series
from napari_elnet.inference.triage import (
    TriageProgress,
    choose_series,
    resolve_choices,
    run_triage,
    triage_steps,
)
from napari_elnet.models.model_file import (
    LoadedModel,
    ModelInfo,
    build_model,
    load_model,
    save_model,
)


def _series(plane: str, slices: int, size: tuple[int, int] = (96, 80), seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    array = rng.normal(100, 20, (slices, *size)).astype(np.float32)
    return Series(
        array=array, plane=plane, number=seed, description=f"{plane} test", uid=f"uid-{seed}"
    )


def _model(tmp_path: Path, task: str, plane: str) -> LoadedModel:
    info = ModelInfo(task=task, plane=plane, k=1)
    return load_model(save_model(tmp_path / f"{task}.pt", build_model(info, seed=1), info))


def test_choose_series_prefers_plane_then_most_slices_and_skips_localizers() -> None:
    series = [
        _series("axial", 2, seed=0),
        _series("axial", 12, seed=1),
        _series("coronal", 20, seed=2),
    ]
    assert choose_series(series, "axial") == 1
    assert choose_series(series, "coronal") == 2
    assert choose_series(series, "sagittal") is None
    assert choose_series([_series("axial", 2)], "axial") is None


def test_results_are_aligned_with_their_series(tmp_path: Path) -> None:
    series = [_series("sagittal", 5, seed=0), _series("axial", 6, (120, 100), seed=1)]
    models = [_model(tmp_path, "acl", "axial")]
    (result,) = run_triage(series, models, device="cpu")
    assert result.series_index == 1
    assert result.heatmap.shape == (6, 120, 100)
    assert result.heatmap.dtype == np.float32
    assert float(result.heatmap.min()) >= 0.0 and float(result.heatmap.max()) <= 1.0
    assert result.relevance.shape == (6,)
    assert result.top_slice == int(np.argmax(result.relevance))
    assert 0.0 < result.probability < 1.0
    assert result.decision == (result.probability >= 0.5)
    assert result.completeness_residual < 1e-3
    assert result.model_identity.startswith("acl/axial acl.pt@")
    assert set(result.timings) == {"prepare", "explain", "applicability", "total"}
    assert result.warnings == ()
    summary = result.summary()
    assert summary["series"] == series[1].name and "heatmap" not in summary


def test_generator_yields_progress_and_returns_one_result_per_model(tmp_path: Path) -> None:
    series = [_series("axial", 4, seed=0), _series("coronal", 4, seed=1)]
    models = [_model(tmp_path, "acl", "axial"), _model(tmp_path, "meniscus", "coronal")]
    steps = triage_steps(series, models, device="cpu")
    progress = []
    while True:
        try:
            progress.append(next(steps))
        except StopIteration as stop:
            results = stop.value
            break
    assert all(isinstance(p, TriageProgress) for p in progress)
    assert [(p.task, p.stage) for p in progress] == [
        ("acl", "prepare"),
        ("acl", "explain"),
        ("meniscus", "prepare"),
        ("meniscus", "explain"),
        ("", "done"),
    ]
    assert [r.task for r in results] == ["acl", "meniscus"]
    assert [r.series_index for r in results] == [0, 1]


def test_override_and_missing_plane_warn_visibly(tmp_path: Path) -> None:
    series = [_series("sagittal", 4, seed=0), _series("sagittal", 6, seed=1)]
    models = [_model(tmp_path, "acl", "axial")]
    auto = resolve_choices(series, models)
    assert auto["acl"][0] is None  # plane gate: no axial series, the model does not run
    assert "no axial series" in auto["acl"][1][0]
    overridden = resolve_choices(series, models, {"acl": 0})
    assert overridden["acl"][0] == 0
    assert "trained on axial" in overridden["acl"][1][0]


def test_bad_override_and_duplicate_tasks_are_rejected(tmp_path: Path) -> None:
    series = [_series("axial", 4)]
    model = _model(tmp_path, "acl", "axial")
    with pytest.raises(ConfigurationError, match="series index 3 for task 'acl'"):
        run_triage(series, [model], device="cpu", overrides={"acl": 3})
    with pytest.raises(ConfigurationError, match="exactly one model"):
        run_triage(series, [model, model], device="cpu")
    with pytest.raises(ConfigurationError, match="no series"):
        run_triage([], [model], device="cpu")
    with pytest.raises(ConfigurationError, match=r"task\(s\) acll, but no model is for them"):
        run_triage(series, [model], device="cpu", overrides={"acll": 0})


def test_a_plane_with_only_short_series_says_so(tmp_path: Path) -> None:
    # Two single-slice axial images (e.g. localizers) are passed over: the reason names them.
    series = [_series("axial", 1, seed=0), _series("axial", 2, seed=1), _series("sagittal", 6)]
    model = _model(tmp_path, "acl", "axial")
    (index, warnings) = resolve_choices(series, [model])["acl"]
    assert index is None
    assert "no axial series of at least 3 slices (2 shorter ones passed over)" in warnings[0]
    (result,) = run_triage(series, [model], device="cpu")
    assert result.applicability is not None and result.applicability.applicable is False
    assert result.applicability.reasons[0] == (
        "no axial series of at least 3 slices (2 shorter ones passed over)"
    )
    assert result.probability is None
    (alone,) = run_triage([_series("sagittal", 6)], [model], device="cpu")
    assert alone.applicability is not None and alone.applicability.reasons[0] == "no axial series"
