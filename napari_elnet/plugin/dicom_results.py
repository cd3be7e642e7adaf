"""DICOM results in napari: heatmap layers read back from a study folder, and the widgets' DICOM export.

- :func:`saved_result_layers` (used by the reader): the heatmap parametric maps and the structured
  report stored under a study folder become heatmap layers over their series, each carrying its
  re-created :class:`~napari_elnet.inference.triage.TaskResult` in the layer metadata.
- :func:`saved_results` (used by the triage widget): those results and their series layers, for the
  results table.
- :func:`export_dicom` (used by the triage widget): the shown results as DICOM objects.
- :func:`worklist_dicom_run` (used by the worklist widget): each listed study triaged again (the
  worklist keeps no heatmaps) and its DICOM results written to ``FOLDER/<study id>/``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_elnet.common.errors import ElnetWarning
from napari_elnet.common.series import Series
from napari_elnet.plugin.layers import METADATA_KEY, LayerDataTuple, heatmap_layer

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_elnet.inference.triage import TaskResult
    from napari_elnet.models.model_file import LoadedModel
    from napari_elnet.worklist.discovery import StudyRef

SOURCE_DICOM = "dicom results"
"""``metadata[METADATA_KEY]["source"]`` of heatmap layers read back from DICOM results."""


def saved_result_layers(
    path: str | os.PathLike[str], series: Sequence[Series]
) -> list[LayerDataTuple]:
    """Heatmap layers of the napari-elnet DICOM results under the study folder ``path``.

    Results that cannot be read become one warning naming the folder (the study still opens).
    """
    from napari_elnet.dicom.readback import results_for_series

    if not Path(path).is_dir() or not series:
        return []
    try:
        results = results_for_series(path, series)
    except Exception as exc:  # damaged results must never stop the study from opening
        warnings.warn(f"ELNet: {path}: DICOM results not read: {exc}", ElnetWarning, stacklevel=2)
        return []
    mapped = [r for r in results if r.heatmap is not None and r.series_index is not None]
    not_assessed = [r for r in results if r not in mapped]
    layers = []
    for result in mapped:
        data, kwargs, kind = heatmap_layer(result, series[result.series_index])  # type: ignore[index]
        entry = kwargs["metadata"][METADATA_KEY]
        entry["result"] = result
        entry["not_assessed"] = not_assessed  # the report's other tasks, which have no layer
        entry["source"] = SOURCE_DICOM
        kwargs["visible"] = False
        layers.append((data, kwargs, kind))
    return layers


def is_saved_result(layer: object) -> bool:
    """Whether ``layer`` is a heatmap layer read back from DICOM results (never raises)."""
    metadata = getattr(layer, "metadata", None)
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return isinstance(entry, dict) and entry.get("source") == SOURCE_DICOM


def saved_results(viewer: napari.Viewer) -> tuple[list[TaskResult], list[Image | None]]:
    """Results read back from DICOM results in ``viewer`` and the series layer of each.

    The report's tasks that were not assessed come last, with no layer (None).
    """
    from napari_elnet.plugin import viewer_actions as actions

    series_layers = actions.series_layers(viewer)
    results: list[TaskResult] = []
    layers: list[Image | None] = []
    not_assessed: dict[str, TaskResult] = {}
    for layer in viewer.layers:
        entry: dict[str, Any] = layer.metadata.get(METADATA_KEY, {})
        if entry.get("role") != "heatmap" or entry.get("source") != SOURCE_DICOM:
            continue
        for other in entry.get("not_assessed", ()):
            not_assessed.setdefault(other.task, other)
        result = entry["result"]
        match = next(
            (
                s
                for s in series_layers
                if actions.series_of_layer(s).uid == result.series_uid
                and s.name == result.series_name
            ),
            None,
        )
        if match is not None:
            results.append(result)
            layers.append(match)
    shown = {r.task for r in results}
    for task, result in not_assessed.items():
        if task not in shown:
            results.append(result)
            layers.append(None)
    return results, layers


def export_dicom(
    folder: str | os.PathLike[str],
    viewer: napari.Viewer,
    results: Sequence[TaskResult],
    result_layers: Sequence[Image | None],
    models: Sequence[LoadedModel],
) -> list[Path]:
    """Write the widget's results as DICOM objects (report, heatmap maps, key images) into ``folder``.

    Args:
        folder: Output folder (refused inside the folders of any series open in ``viewer``).
        viewer: The viewer; its series layers are the study.
        results: The results shown, one per row.
        result_layers: The series layer of each result (same order; None: not run).
        models: The models that produced the results.
    """
    from napari_elnet.dicom.results import write_dicom_results
    from napari_elnet.plugin import viewer_actions as actions

    layers = actions.series_layers(viewer)
    names = [layer.name for layer in layers]
    series = [actions.series_of_layer(layer) for layer in layers]
    rows = [
        dataclasses.replace(result, series_index=None if layer is None else names.index(layer.name))
        for result, layer in zip(results, result_layers, strict=True)
    ]
    return write_dicom_results(series, rows, models, folder)


def worklist_dicom_run(
    root: Path,
    refs: Sequence[StudyRef],
    models: Sequence[LoadedModel],
    device: str,
    folder: Path,
    cancel: threading.Event,
) -> Generator[str, None, tuple[list[Path], list[str]]]:
    """Triage ``refs`` again and write each study's DICOM results into ``folder/<study id>/``.

    Runs on a worker thread (no Qt). Yields one progress line per study; stops at the next step
    when ``cancel`` is set.

    Returns:
        The study folders written and one line per study whose results could not be written.
    """
    from napari_elnet.cli.dicom_out import dicom_results_steps
    from napari_elnet.common.runs import relay
    from napari_elnet.worklist import WorklistConfig, worklist_steps
    from napari_elnet.worklist.discovery import Discovery

    written: list[Path] = []
    problems: list[str] = []
    steps = dicom_results_steps(folder, warn=problems.append, written=written)
    discovery = Discovery(root=root, studies=tuple(refs), problems=())
    run = worklist_steps(discovery, models, WorklistConfig(device=device), steps=steps)
    yield from relay(run, cancel, show=lambda p: f"DICOM results: {p.done}/{p.total} studies")
    return written, [p.strip() for p in problems]
