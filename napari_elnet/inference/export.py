"""Export of triage results: JSON and CSV summaries and the heatmaps as NumPy files."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from napari_elnet.common.json_output import dumps_json
from napari_elnet.common.outputs import ensure_outside_inputs
from napari_elnet.inference.triage import TaskResult

CSV_COLUMNS = (
    "task",
    "plane",
    "applicable",
    "probability",
    "decision",
    "top_slice",
    "series",
    "model",
    "applicability_score",
    "applicability_threshold",
    "outside_plane",
    "reasons",
)


def csv_applicability(result: TaskResult) -> dict[str, str]:
    """The CSV cells of a result that need formatting (probability, applicability fields)."""
    a = result.applicability
    return {
        "applicable": "" if a.applicable is None else str(a.applicable).lower(),
        "probability": "" if result.probability is None else f"{result.probability:.6f}",
        "decision": "" if result.decision is None else str(result.decision),
        "top_slice": "" if result.top_slice is None else str(result.top_slice),
        "applicability_score": "" if a.score is None else f"{a.score:.4f}",
        "applicability_threshold": "" if a.threshold is None else f"{a.threshold:.4f}",
        "outside_plane": str(a.outside_plane).lower(),
        "reasons": "; ".join(a.reasons),
    }


def export_results(
    folder: str | os.PathLike,
    results: Sequence[TaskResult],
    inputs: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and ``<task>_heatmap.npy`` files into ``folder``.

    A withheld probability (model not applicable) is ``null`` in JSON and empty in the CSV, whose
    ``applicable``, ``reasons`` and ``outside_plane`` columns say why; a model that did not run
    (no series of its plane) has no heatmap file.

    Args:
        folder: Output folder (created if needed); refused if it lies inside an input folder.
        results: Triage results.
        inputs: The study's files or folders, which must not be written into.

    Returns:
        The paths written.
    """
    target = ensure_outside_inputs(folder, inputs, folder=True)
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "results.json", target / "results.csv"]
    records = [r.summary() for r in results]
    written[0].write_text(dumps_json({"results": records}, indent=2) + "\n")
    with written[1].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for result, record in zip(results, records, strict=True):
            writer.writerow(record | csv_applicability(result))
    return written + write_heatmaps(target, results)


def write_heatmaps(
    folder: str | os.PathLike,
    results: Sequence[TaskResult],
    inputs: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write each result's heatmap, shape (S, H, W) float32, as ``<task>_heatmap.npy`` in ``folder``.

    A model that did not run (no heatmap) has no file. ``folder`` is created if needed and refused
    if it lies inside one of ``inputs``. Returns the paths written.
    """
    target = ensure_outside_inputs(folder, inputs, folder=True)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        if result.heatmap is None:
            continue
        path = target / f"{result.task}_heatmap.npy"
        np.save(path, result.heatmap)
        written.append(path)
    return written
