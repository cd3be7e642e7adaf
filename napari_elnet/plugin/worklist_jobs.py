"""Worker side of the "ELNet worklist" widget: the batch run and the opening of one study.

Both are generators run by napari thread workers. They never touch a Qt widget: the widget connects
their ``yielded`` and ``returned`` signals and does everything visible on the GUI thread.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_elnet.common.series import Series
    from napari_elnet.inference.triage import TaskResult
    from napari_elnet.models.model_file import LoadedModel
    from napari_elnet.worklist import Discovery, StudyRef, WorklistProgress, WorklistReport


@dataclass(frozen=True)
class OpenedStudy:
    """A study loaded and triaged again for display (with its heatmaps, which the worklist drops).

    Attributes:
        ref: The study.
        series: Its series, in display order.
        results: One result per model, in model order; ``series_index`` points into ``series``.
        warnings: One per file of the study that could not be loaded (``<file name>: <reason>``),
            as the worklist's row carries them.
    """

    ref: StudyRef
    series: list[Series]
    results: list[TaskResult]
    warnings: tuple[str, ...] = ()


def worklist_run(
    root: Path,
    models: Sequence[LoadedModel],
    device: str,
    done_ids: Collection[str],
    cancel: threading.Event,
) -> Generator[Discovery | WorklistProgress, None, WorklistReport | None]:
    """Discover the studies under ``root``, then triage them; yields the Discovery, then progress.

    Runs on a worker thread, so it must not touch any Qt widget. When ``cancel`` is set, the run
    stops at its next step (before the next model or study), shuts the loader thread down and
    returns None; every study finished so far has already been yielded with its result.

    Args:
        root: The folder of studies (read only; nothing is written there).
        models: One model per task.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        done_ids: Study ids already shown (a continued run skips them).
        cancel: Set by the widget to stop.

    Returns:
        The ranked report of a run that reached its end, None for a stopped run.
    """
    from napari_elnet.common.runs import relay
    from napari_elnet.worklist import WorklistConfig, discover_studies, worklist_steps

    discovery = discover_studies(root)
    yield discovery
    steps = worklist_steps(discovery, models, WorklistConfig(device=device), done_ids=done_ids)
    end = yield from relay(steps, cancel)
    return end.result


def open_study_run(
    ref: StudyRef, models: Sequence[LoadedModel], device: str
) -> Generator[str, None, OpenedStudy]:
    """Load one study and triage it again to get its heatmaps; yields what it is doing.

    Runs on a worker thread, so it must not touch any Qt widget. The models are copied first: the
    explanation hooks a model, and a worklist run may be using the same models at the same time.
    """
    from napari_elnet.common.runs import relay
    from napari_elnet.inference.triage import TriageProgress, triage_steps
    from napari_elnet.worklist import load_study_scan
    from napari_elnet.worklist.loading import problem_warnings

    yield f"loading {ref.name}"
    scan = load_study_scan(ref)
    series = list(scan.series)
    private = [replace(m, model=copy.deepcopy(m.model)) for m in models]

    def show(progress: TriageProgress) -> str:
        return f"{ref.name}: {progress.task} {progress.stage}".strip()

    end = yield from relay(triage_steps(series, private, device), show=show)
    return OpenedStudy(ref, series, list(end.result or ()), problem_warnings(scan))


def most_suspicious(results: Sequence[TaskResult]) -> int:
    """Index of the task that sets the study's suspicion score (the core's rule; 0 when none)."""
    from napari_elnet.worklist.suspicion import most_suspicious as core_rule

    best = core_rule(results)
    return 0 if best is None else best
