"""Triage pipeline: for each model, its series -> probability, FullGrad heatmap, most informative slice.

The computation is a generator (:func:`triage_steps`) that yields :class:`TriageProgress` between
stages and returns the results, so a GUI worker can report progress and cancel between yields;
:func:`run_triage` runs it to the end.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Plane, Series
from napari_elnet.common.steps import run_to_end
from napari_elnet.inference.fullgrad import explain
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.transforms.preprocess import prepare_volume

MIN_SLICES = 3
"""Series with fewer slices (localizers, single images) are never chosen automatically."""


@dataclass(frozen=True)
class TriageProgress:
    """Where a triage run is: ``step`` of ``total`` stages done, about to start ``stage``."""

    task: str
    stage: str
    step: int
    total: int


@dataclass(frozen=True, eq=False)
class TaskResult:
    """The outcome of one model on one series.

    Attributes:
        probability: Softmax probability of the positive class.
        score: Decision score ``logit_pos - logit_neg`` (the explained quantity).
        decision: ``probability >= threshold``.
        heatmap: (S, H, W) float32 in [0, 1], aligned voxel for voxel with the series.
        relevance: (S,) slice relevance profile; ``top_slice`` is its argmax.
        peak: (slice, row, col) of the heatmap maximum, in series voxels.
        series_index: Index of the series used in the list given to the pipeline.
        timings: Seconds spent per stage (``prepare``, ``explain``, ``total``).
        warnings: Anything the user must know about this result (e.g. a plane mismatch).
    """

    task: str
    plane: Plane
    probability: float
    score: float
    threshold: float
    heatmap: np.ndarray
    relevance: np.ndarray
    top_slice: int
    peak: tuple[int, int, int]
    series_index: int
    series_name: str
    series_uid: str
    model_identity: str
    completeness_residual: float
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def decision(self) -> bool:
        """True when the probability reaches the model's threshold."""
        return self.probability >= self.threshold

    def summary(self) -> dict[str, object]:
        """JSON-able record without the heatmap."""
        return {
            "task": self.task,
            "plane": self.plane,
            "probability": self.probability,
            "score": self.score,
            "threshold": self.threshold,
            "decision": self.decision,
            "top_slice": self.top_slice,
            "peak": list(self.peak),
            "relevance": [float(r) for r in self.relevance],
            "series_index": self.series_index,
            "series": self.series_name,
            "series_uid": self.series_uid,
            "model": self.model_identity,
            "completeness_residual": self.completeness_residual,
            "timings": self.timings,
            "warnings": list(self.warnings),
        }


def choose_series(series: Sequence[Series], plane: Plane) -> int | None:
    """Index of the series to read for ``plane``: the one of that plane with the most slices.

    Series with fewer than MIN_SLICES slices are passed over. None when no series has that plane.
    """
    candidates = [
        (s.shape[0], -i)
        for i, s in enumerate(series)
        if s.plane == plane and s.shape[0] >= MIN_SLICES
    ]
    return -max(candidates)[1] if candidates else None


def _fallback_series(series: Sequence[Series]) -> int:
    """Index of the largest series (most slices), for a model whose plane is missing."""
    return max(range(len(series)), key=lambda i: (series[i].shape[0], -i))


def resolve_choices(
    series: Sequence[Series],
    models: Sequence[LoadedModel],
    overrides: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, tuple[str, ...]]]:
    """For each model's task: the series index to use and the warnings that choice carries."""
    if not series:
        raise ConfigurationError("no series to triage")
    overrides = dict(overrides or {})
    choices: dict[str, tuple[int, tuple[str, ...]]] = {}
    for loaded in models:
        task, plane = loaded.info.task, loaded.info.plane
        if task in overrides:
            index = overrides[task]
            if not 0 <= index < len(series):
                raise ConfigurationError(
                    f"series index {index} for task {task!r} is out of range 0..{len(series) - 1}"
                )
        else:
            auto = choose_series(series, plane)
            index = _fallback_series(series) if auto is None else auto
        warnings: tuple[str, ...] = ()
        if series[index].plane != plane:
            warnings = (
                f"the {task} model was trained on {plane} series but runs on "
                f"{series[index].name}: its result is not meaningful",
            )
        choices[task] = (index, warnings)
    return choices


def triage_steps(
    series: Sequence[Series],
    models: Sequence[LoadedModel],
    device: str = "auto",
    overrides: Mapping[str, int] | None = None,
) -> Generator[TriageProgress, None, list[TaskResult]]:
    """Run every model on its series, yielding progress between stages.

    Args:
        series: The study's series (e.g. from :func:`napari_elnet.io.load_study`).
        models: Loaded models; their tasks must be distinct.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        overrides: Task -> series index, replacing the automatic choice by plane.

    Returns:
        One TaskResult per model, in the order of ``models``.
    """
    tasks = [m.info.task for m in models]
    if len(set(tasks)) != len(tasks):
        raise ConfigurationError(f"each task needs exactly one model, got {tasks}")
    torch_device = resolve_device(device)
    choices = resolve_choices(series, models, overrides)
    total = 2 * len(models)
    results: list[TaskResult] = []
    for number, loaded in enumerate(models):
        task = loaded.info.task
        index, warnings = choices[task]
        chosen = series[index]
        yield TriageProgress(task, "prepare", 2 * number, total)
        start = time.perf_counter()
        x = prepare_volume(chosen.array, loaded.info.landmarks).to(torch_device)
        model = loaded.model.to(torch_device)
        prepared = time.perf_counter()
        yield TriageProgress(task, "explain", 2 * number + 1, total)
        explanation = explain(model, x, output_size=chosen.shape[1:])
        done = time.perf_counter()
        results.append(
            TaskResult(
                task=task,
                plane=loaded.info.plane,
                probability=explanation.probability,
                score=explanation.score,
                threshold=loaded.info.threshold,
                heatmap=explanation.heatmap,
                relevance=explanation.relevance,
                top_slice=explanation.top_slice,
                peak=explanation.peak,
                series_index=index,
                series_name=chosen.name,
                series_uid=chosen.uid,
                model_identity=loaded.identity,
                completeness_residual=explanation.completeness_residual,
                timings={
                    "prepare": prepared - start,
                    "explain": done - prepared,
                    "total": done - start,
                },
                warnings=warnings,
            )
        )
    yield TriageProgress("", "done", total, total)
    return results


def run_triage(
    series: Sequence[Series],
    models: Sequence[LoadedModel],
    device: str = "auto",
    overrides: Mapping[str, int] | None = None,
) -> list[TaskResult]:
    """Run :func:`triage_steps` to the end and return its results."""
    return run_to_end(triage_steps(series, models, device, overrides))
