"""What the widgets do to a napari viewer: find series layers, add heatmaps, move to a slice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_elnet.common.series import Series
from napari_elnet.plugin.layers import METADATA_KEY, heatmap_layer, heatmap_name

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_elnet.inference.triage import TaskResult


def role(layer: object) -> str | None:
    """``series``, ``heatmap`` or None, from our entry in the layer's metadata."""
    meta = getattr(layer, "metadata", {}) or {}
    entry = meta.get(METADATA_KEY)
    return entry.get("role") if isinstance(entry, dict) else None


def is_series_layer(layer: object) -> bool:
    """A 3-D single-channel image layer that is not one of our heatmaps."""
    from napari.layers import Image

    return (
        isinstance(layer, Image)
        and not layer.rgb
        and not layer.multiscale
        and layer.ndim == 3
        and role(layer) != "heatmap"
    )


def series_layers(viewer: napari.Viewer) -> list[Image]:
    """Image layers that can be triaged, in layer-list order."""
    return [layer for layer in viewer.layers if is_series_layer(layer)]


def series_of_layer(layer: Image) -> Series:
    """The Series behind a layer: the one our reader stored, or one built from the layer."""
    entry = layer.metadata.get(METADATA_KEY, {})
    stored = entry.get("series") if isinstance(entry, dict) else None
    if isinstance(stored, Series) and stored.array is layer.data:
        return stored
    plane = entry.get("plane", "unknown") if isinstance(entry, dict) else "unknown"
    return Series(
        array=np.asarray(layer.data, dtype=np.float32),
        spacing=tuple(float(s) for s in layer.scale),  # type: ignore[arg-type]
        plane=plane,
        description=layer.name,
        uid=f"layer:{layer.name}",
    )


def data_slice(viewer: napari.Viewer, layer: Image) -> int:
    """Index of the slice of ``layer`` the viewer shows now."""
    index = layer.world_to_data(viewer.dims.point)[0]
    return int(np.clip(round(float(index)), 0, layer.data.shape[0] - 1))


def go_to_slice(viewer: napari.Viewer, layer: Image, index: int) -> None:
    """Move the viewer to slice ``index`` of ``layer`` (world coordinates, so any scale works)."""
    world = layer.data_to_world([index, 0, 0])
    viewer.dims.set_point(0, float(world[0]))


def find_heatmap(viewer: napari.Viewer, task: str) -> Image | None:
    """The heatmap layer of ``task``, if there is one."""
    name = heatmap_name(task)
    for layer in viewer.layers:
        if role(layer) == "heatmap" and layer.name == name:
            return layer
    return None


def replace_heatmaps(
    viewer: napari.Viewer, results: Sequence[TaskResult], layers: Sequence[Image | None]
) -> list[Image | None]:
    """One heatmap layer per result over its series layer.

    A task's existing heatmap layer is updated in place (its data, geometry and metadata), which
    keeps the user's display settings and costs a fraction of removing and re-adding the layer.
    New layers start hidden, so that only the one :func:`focus` shows is drawn on the GUI thread.
    A result whose model is not applicable (or did not run) gets no heatmap by default (None),
    and the task's heatmap of an earlier run is removed.
    """
    shown: list[Image | None] = []
    for result, layer in zip(results, layers, strict=True):
        if layer is None or result.heatmap is None or result.applicability.applicable is False:
            stale = find_heatmap(viewer, result.task)
            if stale is not None:
                viewer.layers.remove(stale)
            shown.append(None)
            continue
        data, kwargs, _ = heatmap_layer(result, series_of_layer(layer))
        kwargs["translate"] = tuple(layer.translate)
        old = find_heatmap(viewer, result.task)
        if old is None:
            shown.append(viewer.add_image(data, visible=False, **kwargs))
            continue
        old.data = data
        old.scale, old.translate = kwargs["scale"], kwargs["translate"]
        old.contrast_limits = kwargs["contrast_limits"]
        old.metadata = kwargs["metadata"]
        shown.append(old)
    return shown


def focus(viewer: napari.Viewer, series_layer: Image, heatmap: Image | None) -> None:
    """Show one series with its heatmap; hide the other series and heatmaps.

    Layers are matched by name: napari hands plugins proxies of its layers, so identity between a
    layer returned by ``add_image`` and the same layer met in ``viewer.layers`` does not hold.
    """
    shown_heatmap = None if heatmap is None else heatmap.name
    for layer in viewer.layers:
        if role(layer) == "heatmap":
            layer.visible = layer.name == shown_heatmap
        elif is_series_layer(layer):
            layer.visible = layer.name == series_layer.name
