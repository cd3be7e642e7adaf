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
import torch

from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import MIN_SLICES, Plane, Series, choose_series
from napari_elnet.common.steps import run_to_end
from napari_elnet.inference.applicability import (
    UNKNOWN,
    Applicability,
    assess,
    capture_features,
    description_of,
    missing_plane_reason,
    no_series_of_plane,
    outside_plane_reason,
)
from napari_elnet.inference.fullgrad import explain
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.transforms.preprocess import PreparedSeries, prepare_series


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
        probability: Softmax probability of the positive class; None when withheld (the model
            is not applicable to this series, see ``applicability``).
        score: Decision score ``logit_pos - logit_neg`` (the explained quantity); None when the
            probability is withheld.
        decision: ``probability >= threshold``; None when the probability is withheld.
        heatmap: (S, H, W) float32 in [0, 1], aligned voxel for voxel with the series; None when
            the model did not run (no series of its plane).
        relevance: (S,) slice relevance profile; ``top_slice`` is its argmax (both None when
            the model did not run).
        peak: (slice, row, col) of the heatmap maximum, in series voxels (None: did not run).
        series_index: Index of the series used in the list given to the pipeline (None: no
            series of the model's plane, nothing was run).
        timings: Seconds spent per stage (``prepare``, ``explain``, ``total``).
        warnings: Anything the user must know about this result (e.g. a plane mismatch).
        applicability: Whether the model is applicable to the series, with score and reasons.
    """

    task: str
    plane: Plane
    probability: float | None
    score: float | None
    threshold: float
    heatmap: np.ndarray | None
    relevance: np.ndarray | None
    top_slice: int | None
    peak: tuple[int, int, int] | None
    series_index: int | None
    series_name: str
    series_uid: str
    model_identity: str
    completeness_residual: float
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    applicability: Applicability = UNKNOWN

    @classmethod
    def not_assessed(
        cls,
        task: str,
        plane: Plane,
        threshold: float,
        model_identity: str,
        applicability: Applicability,
        warnings: tuple[str, ...] = (),
    ) -> TaskResult:
        """A task whose model gave nothing: no probability, score, heatmap or slice."""
        return cls(
            task=task,
            plane=plane,
            probability=None,
            score=None,
            threshold=threshold,
            heatmap=None,
            relevance=None,
            top_slice=None,
            peak=None,
            series_index=None,
            series_name="",
            series_uid="",
            model_identity=model_identity,
            completeness_residual=float("nan"),
            warnings=warnings,
            applicability=applicability,
        )

    @property
    def decision(self) -> bool | None:
        """True when the probability reaches the model's threshold; None when it is withheld."""
        return None if self.probability is None else self.probability >= self.threshold

    @property
    def applicable(self) -> bool | None:
        """Whether the model is applicable (None: unknown, the model file has no description)."""
        return self.applicability.applicable

    def summary(self) -> dict[str, object]:
        """JSON-able record without the heatmap."""
        return {
            "task": self.task,
            "plane": self.plane,
            "applicable": self.applicability.applicable,
            "applicability": self.applicability.summary(),
            "probability": self.probability,
            "score": self.score,
            "threshold": self.threshold,
            "decision": self.decision,
            "top_slice": self.top_slice,
            "peak": None if self.peak is None else list(self.peak),
            "relevance": None if self.relevance is None else [float(r) for r in self.relevance],
            "series_index": self.series_index,
            "series": self.series_name,
            "series_uid": self.series_uid,
            "model": self.model_identity,
            "completeness_residual": self.completeness_residual,
            "timings": self.timings,
            "warnings": list(self.warnings),
        }


def resolve_choices(
    series: Sequence[Series],
    models: Sequence[LoadedModel],
    overrides: Mapping[str, int] | None = None,
) -> dict[str, tuple[int | None, tuple[str, ...]]]:
    """For each model's task: the series index to use and the warnings that choice carries.

    A model runs only on a series of its plane (plane gate): the index is None when the study
    has none and no override names a series for the task. An override may name a series of
    another plane; the warning then says so.

    Raises:
        ConfigurationError: no series, an override index out of range, or an override for a
            task no model is for.
    """
    if not series:
        raise ConfigurationError("no series to triage")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {m.info.task for m in models})
    if unknown:
        raise ConfigurationError(
            f"a series was chosen for task(s) {', '.join(unknown)}, but no model is for them "
            f"(tasks: {', '.join(m.info.task for m in models)})"
        )
    choices: dict[str, tuple[int | None, tuple[str, ...]]] = {}
    for loaded in models:
        task, plane = loaded.info.task, loaded.info.plane
        index: int | None
        if task in overrides:
            index = overrides[task]
            if not 0 <= index < len(series):
                raise ConfigurationError(
                    f"series index {index} for task {task!r} is out of range 0..{len(series) - 1}"
                )
        else:
            index = choose_series(series, plane)
        warnings: tuple[str, ...] = ()
        if index is None:
            missing = missing_plane_reason(plane, _too_short(series, plane))
            warnings = (f"the {task} model was not run: the study has {missing}",)
        elif series[index].plane != plane:
            warnings = (
                f"the {task} model was trained on {plane} series but runs on "
                f"{series[index].name} (outside its plane, chosen by the user)",
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
    shared: dict[int, PreparedSeries] = {}  # resized and clipped once per series, for every model
    for number, loaded in enumerate(models):
        task = loaded.info.task
        index, warnings = choices[task]
        description = description_of(loaded)
        if index is None:
            results.append(_not_run(loaded, warnings, _too_short(series, loaded.info.plane)))
            continue
        chosen = series[index]
        outside = chosen.plane != loaded.info.plane
        extra = (outside_plane_reason(loaded.info.plane, chosen.plane, chosen.name),) * outside
        yield TriageProgress(task, "prepare", 2 * number, total)
        start = time.perf_counter()
        if index not in shared:
            shared[index] = prepare_series(chosen.array)
        x = shared[index].network_input(loaded.info.landmarks).to(torch_device)
        model = loaded.model.to(torch_device)
        prepared = time.perf_counter()
        yield TriageProgress(task, "explain", 2 * number + 1, total)
        with capture_features(model) as captured:
            explanation = explain(model, x, output_size=chosen.shape[1:])
        explained = time.perf_counter()
        features = captured[-1] if captured else None
        if features is None and description is not None:
            with torch.no_grad():
                features = model.features(x)
        applicability = assess(
            description, chosen.array, features, extra, outside, prepared=shared[index]
        )
        withheld = applicability.applicable is False
        done = time.perf_counter()
        results.append(
            TaskResult(
                task=task,
                plane=loaded.info.plane,
                probability=None if withheld else explanation.probability,
                score=None if withheld else explanation.score,
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
                    "explain": explained - prepared,
                    "applicability": done - explained,
                    "total": done - start,
                },
                warnings=warnings,
                applicability=applicability,
            )
        )
    yield TriageProgress("", "done", total, total)
    return results


def _too_short(series: Sequence[Series], plane: str) -> int:
    """How many series of ``plane`` have too few slices to be chosen."""
    return sum(s.plane == plane and s.shape[0] < MIN_SLICES for s in series)


def _not_run(loaded: LoadedModel, warnings: tuple[str, ...], too_short: int = 0) -> TaskResult:
    """The result of a model whose plane the study lacks: not applicable, nothing computed."""
    return TaskResult.not_assessed(
        loaded.info.task,
        loaded.info.plane,
        loaded.info.threshold,
        loaded.identity,
        no_series_of_plane(loaded.info.plane, too_short),
        warnings,
    )


def run_triage(
    series: Sequence[Series],
    models: Sequence[LoadedModel],
    device: str = "auto",
    overrides: Mapping[str, int] | None = None,
) -> list[TaskResult]:
    """Run :func:`triage_steps` to the end and return its results."""
    return run_to_end(triage_steps(series, models, device, overrides))
