"""Layer data built from series and results (no display needed)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_elnet.common.series import Series
from napari_elnet.inference.triage import TaskResult
from napari_elnet.plugin.layers import (
    METADATA_KEY,
    contrast_limits,
    heatmap_layer,
    heatmap_name,
    series_layer,
    study_layers,
)


def _series(slices: int = 4, window: tuple[float, float] | None = (100.0, 50.0)) -> Series:
    array = np.arange(slices * 6 * 5, dtype=np.float32).reshape(slices, 6, 5)
    return Series(
        array=array,
        spacing=(3.0, 0.5, 0.4),
        plane="axial",
        number=7,
        description="PD AX",
        window=window,
    )


def _result(series: Series) -> TaskResult:
    return TaskResult(
        task="acl",
        plane="axial",
        probability=0.8,
        score=1.4,
        threshold=0.5,
        heatmap=np.zeros(series.shape, np.float32),
        relevance=np.zeros(series.shape[0]),
        top_slice=1,
        peak=(1, 2, 3),
        series_index=0,
        series_name=series.name,
        series_uid=series.uid,
        model_identity="acl/axial m.pt@abc",
        completeness_residual=0.0,
    )


def test_series_layer_name_scale_window_metadata() -> None:
    series = _series()
    data, kwargs, kind = series_layer(series)
    assert kind == "image" and data is series.array
    assert kwargs["name"] == "7: PD AX (axial)"
    assert kwargs["scale"] == (3.0, 0.5, 0.4)
    assert kwargs["contrast_limits"] == (75.0, 125.0)
    assert kwargs["metadata"][METADATA_KEY]["series"] is series
    assert kwargs["metadata"][METADATA_KEY]["role"] == "series"


def test_contrast_limits_without_window_use_percentiles() -> None:
    low, high = contrast_limits(_series(window=None))
    assert 0.0 <= low < high <= 119.0


def test_only_the_largest_series_starts_visible() -> None:
    layers = study_layers([_series(3), _series(9), _series(5)])
    assert [kwargs["visible"] for _, kwargs, _ in layers] == [False, True, False]


def test_heatmap_layer_overlays_its_series() -> None:
    series = _series()
    data, kwargs, _ = heatmap_layer(_result(series), series)
    assert data.shape == series.shape
    assert kwargs["scale"] == (3.0, 0.5, 0.4)
    assert kwargs["contrast_limits"] == (0.0, 1.0)
    assert kwargs["blending"] == "additive"
    assert kwargs["colormap"] == "inferno"
    assert kwargs["name"] == heatmap_name("acl")


def test_heatmap_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match series"):
        heatmap_layer(_result(_series(4)), _series(5))
