"""Layer data for napari: image layers from series, heatmap layers from triage results.

Everything here returns napari ``LayerDataTuple``s ``(data, kwargs, layer_type)`` and needs no
napari import, so it is cheap and testable without a display.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_elnet.common.series import Series

if TYPE_CHECKING:
    from napari_elnet.inference.triage import TaskResult

LayerDataTuple = tuple[np.ndarray, dict[str, Any], str]

METADATA_KEY = "napari_elnet"
"""Key of our entry in a layer's metadata dict."""

AXIS_LABELS = ("slice", "row", "column")
HEATMAP_COLORMAP = "inferno"
HEATMAP_OPACITY = 0.5


def contrast_limits(series: Series) -> tuple[float, float]:
    """Display range: the DICOM window when there is one, else the 0.5..99.5 percentile range."""
    if series.window is not None:
        center, width = series.window
        if width > 0:
            return (float(center - width / 2), float(center + width / 2))
    sample = series.array[:: max(1, series.shape[0] // 8)]
    low, high = np.percentile(sample, (0.5, 99.5))
    if high <= low:
        high = low + 1.0
    return (float(low), float(high))


def series_metadata(series: Series) -> dict[str, Any]:
    """What a layer remembers about its series (study, series, geometry, files, warnings)."""
    return {
        METADATA_KEY: {
            "role": "series",
            "series": series,
            "uid": series.uid,
            "plane": series.plane,
            "number": series.number,
            "description": series.description,
            "spacing_mm": series.spacing,
            "orientation": None if series.orientation is None else series.orientation.tolist(),
            "origin": series.origin,
            "study": asdict(series.study),
            "files": [str(f) for f in series.files],
            "warnings": list(series.warnings),
        }
    }


def series_layer(series: Series, visible: bool = True) -> LayerDataTuple:
    """An image layer of one series in its own voxel frame, scaled to mm."""
    kwargs = {
        "name": series.name,
        "scale": tuple(float(s) for s in series.spacing),
        "units": ("mm", "mm", "mm"),
        "axis_labels": AXIS_LABELS,
        "contrast_limits": contrast_limits(series),
        "colormap": "gray",
        "metadata": series_metadata(series),
        "visible": visible,
    }
    return (series.array, kwargs, "image")


def study_layers(series: list[Series]) -> list[LayerDataTuple]:
    """Layers of a whole study; only the series with the most slices starts visible."""
    if not series:
        return []
    main = max(range(len(series)), key=lambda i: (series[i].shape[0], -i))
    return [series_layer(s, visible=(i == main)) for i, s in enumerate(series)]


def heatmap_name(task: str) -> str:
    """Name of the heatmap layer of a task (stable, so a new run replaces the old layer)."""
    return f"ELNet {task} heatmap"


def heatmap_layer(result: TaskResult, series: Series) -> LayerDataTuple:
    """The FullGrad heatmap of a result, overlaid exactly on its series."""
    if result.heatmap.shape != series.shape:
        raise ValueError(
            f"heatmap shape {result.heatmap.shape} does not match series {series.name} {series.shape}"
        )
    kwargs = {
        "name": heatmap_name(result.task),
        "scale": tuple(float(s) for s in series.spacing),
        "units": ("mm", "mm", "mm"),
        "axis_labels": AXIS_LABELS,
        "contrast_limits": (0.0, 1.0),
        "colormap": HEATMAP_COLORMAP,
        "blending": "additive",
        "opacity": HEATMAP_OPACITY,
        "metadata": {
            METADATA_KEY: {
                "role": "heatmap",
                "task": result.task,
                "probability": result.probability,
                "top_slice": result.top_slice,
                "series_uid": series.uid,
                "model": result.model_identity,
            }
        },
    }
    return (result.heatmap, kwargs, "image")
