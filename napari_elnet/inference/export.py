"""Export of triage results: JSON and CSV summaries and the heatmaps as NumPy files."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from napari_elnet.common.outputs import ensure_outside_inputs
from napari_elnet.inference.triage import TaskResult

CSV_COLUMNS = ("task", "plane", "probability", "decision", "top_slice", "series", "model")


def export_results(
    folder: str | os.PathLike,
    results: Sequence[TaskResult],
    inputs: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and ``<task>_heatmap.npy`` files into ``folder``.

    Args:
        folder: Output folder (created if needed); refused if it lies inside an input folder.
        results: Triage results.
        inputs: The study's files or folders, which must not be written into.

    Returns:
        The paths written.
    """
    target = ensure_outside_inputs(folder, inputs)
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "results.json", target / "results.csv"]
    records = [r.summary() for r in results]
    written[0].write_text(json.dumps({"results": records}, indent=2) + "\n")
    with written[1].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(record | {"probability": f"{record['probability']:.6f}"})
    for result in results:
        path = target / f"{result.task}_heatmap.npy"
        np.save(path, result.heatmap)
        written.append(path)
    return written
