"""Batch triage of every study under a root: a generator that yields progress and returns the report.

The loader thread of a :class:`~napari_elnet.worklist.prefetch.Prefetcher` reads the next studies
(at most ``prefetch`` waiting) while the generator runs the models on the current one, so the total
time approaches the larger of the pure load time and the pure compute time instead of their sum.
On the CPU the models run in ``lanes`` threads (one per usable core by default), each triaging a
different study with its own copy of the models and torch on ``threads // lanes`` threads of its
own (:mod:`napari_elnet.worklist.lanes`); torch's kernels release the GIL, and on ELNet's small
convolutions separate studies use the cores better than two torch threads on one study. Studies
then finish out of order; the results are kept in the order of the studies, so the report and its
ranking are those of one lane, with the same probabilities, bit for bit, as one lane at the same
torch threads per study. Against one lane on more torch threads they differ in float32 rounding
(~1e-6 relative): ELNet's forward sums in an order that depends on torch's thread count, as
results already differ between machines with different core counts.
A study that cannot be loaded or triaged becomes a result with status ``error`` and the reason; it
never stops the run. With ``config.report`` set the ranked report is rewritten atomically after every
study, and the studies it already holds are skipped, so a killed run resumes where it stopped.
Stop early by closing the generator (or setting ``cancel``): the lanes stop at their next step
(a study in progress on another lane is dropped, as is the current study of a closed generator)
and the loader thread is shut down.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import time
from collections.abc import Callable, Collection, Generator, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from napari_elnet.common.cpus import usable_cpus
from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.runs import relay
from napari_elnet.common.series import Series
from napari_elnet.common.steps import run_to_end
from napari_elnet.inference.triage import TaskResult, TriageProgress, triage_steps
from napari_elnet.io.parallel import LoaderProcess
from napari_elnet.io.scan import FileProblem, StudyScan
from napari_elnet.io.study import read_files
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.worklist.allocator import MemoryKeeper
from napari_elnet.worklist.discovery import Discovery, StudyRef, discover_studies
from napari_elnet.worklist.lanes import Lanes, Step
from napari_elnet.worklist.loading import load_study_scan, problem_warnings
from napari_elnet.worklist.prefetch import Loaded, Prefetcher
from napari_elnet.worklist.report import (
    StudyResult,
    TaskRow,
    check_report_path,
    ranked,
    read_report,
    without_phi,
    write_report,
)
from napari_elnet.worklist.suspicion import SuspicionConfig, suspicion_score

StudyData = Sequence[Series] | StudyScan
"""A loaded study: its series, or a :class:`StudyScan` that also names its files not loaded."""
StudyLoader = Callable[[StudyRef], StudyData]
TriageSteps = Callable[
    [Sequence[Series], Sequence[LoadedModel], str],
    Generator[TriageProgress, None, list[TaskResult]],
]


@dataclass(frozen=True)
class WorklistConfig:
    """Settings of a batch triage run.

    Attributes:
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        prefetch: Most loaded studies waiting for the models (>= 1).
        report: CSV or JSON report rewritten after every study (None: keep results in memory only).
            It must lie outside the root.
        resume: Skip the studies an existing ``report`` already holds (and keep its rows).
        include_phi: Keep patient name, ID, study date, folders and series UIDs in the results and the
            report.
        suspicion: Weights of the ranking score.
        load_process: Read the studies in a separate worker process (the default loader only, runs
            of two or more studies), so that pydicom's parsing never holds the GIL of the thread
            that runs the models. None (default): only when the models run on a GPU. On the CPU,
            torch's threads already take every core and a loading process competes with them
            (measured on 2 cores: 41-48 studies/min with the process, 56-63 with a thread).
        release_memory: Give glibc's free heap memory back to the system whenever resident
            memory has grown by ``release_margin_mb`` since the last time, so that it stays flat
            over many studies (see :mod:`napari_elnet.worklist.allocator`; no effect on other C
            libraries).
        release_margin_mb: Growth of resident memory (MiB) that triggers the release; 0 releases
            after every study.
        lanes: Studies triaged at the same time, each on its own thread with its own copy of the
            models and ``torch.get_num_threads() // lanes`` torch threads (at least 1). None
            (default): one lane per usable core on the CPU, one lane on a GPU (a GPU runs one
            study's kernels at a time). Never more lanes than studies to triage.
    """

    device: str = "auto"
    prefetch: int = 2
    report: Path | None = None
    resume: bool = True
    include_phi: bool = False
    suspicion: SuspicionConfig = field(default_factory=SuspicionConfig)
    load_process: bool | None = None
    release_memory: bool = True
    release_margin_mb: float = 128.0
    lanes: int | None = None

    def __post_init__(self) -> None:
        if self.prefetch < 1:
            raise ConfigurationError(f"prefetch must be >= 1, got {self.prefetch}")
        if self.lanes is not None and self.lanes < 1:
            raise ConfigurationError(f"lanes must be >= 1 (or None: automatic), got {self.lanes}")
        if not self.release_margin_mb >= 0:
            raise ConfigurationError(
                f"release_margin_mb must be >= 0, got {self.release_margin_mb}"
            )
        if self.report is not None:
            object.__setattr__(self, "report", check_report_path(self.report))


@dataclass(frozen=True)
class WorklistProgress:
    """Where a batch run is.

    Attributes:
        stage: ``start``, ``task`` (a model is about to run on ``study``), ``study`` (``study`` is
            finished) or ``done``.
        done: Studies finished, including those skipped as already reported.
        total: All studies found.
        skipped: Studies skipped because the report already held them.
        errors: Studies of this run that ended with status ``error``.
        study: Display name of the current study ("" at start and done).
        task: Task about to run (stage ``task`` only).
        elapsed: Seconds since the run started.
        eta: Estimated seconds to the end (None until a study of this run has finished).
        result: The finished study's result (stage ``study`` only; without PHI unless
            ``include_phi``), so a caller can show results as they arrive.
    """

    stage: str
    done: int
    total: int
    skipped: int = 0
    errors: int = 0
    study: str = ""
    task: str = ""
    elapsed: float = 0.0
    eta: float | None = None
    result: StudyResult | None = None


@dataclass(frozen=True)
class WorklistReport:
    """What a batch run produced.

    Attributes:
        root: The folder triaged.
        results: Every study (including those resumed from the report), ranked by suspicion.
        problems: Files found during discovery that could not be read.
        skipped: Studies skipped because the report already held them.
        cancelled: True when the run stopped before the last study.
        elapsed: Wall time of the run (s).
        load_seconds: Time the loader thread spent loading (s).
        compute_seconds: Time spent running the models (s).
        wait_seconds: Time the models waited for the loader (s).
    """

    root: Path
    results: tuple[StudyResult, ...]
    problems: tuple[FileProblem, ...]
    skipped: int
    cancelled: bool
    elapsed: float
    load_seconds: float
    compute_seconds: float
    wait_seconds: float


@dataclass
class RunTally:
    """Mutable counters of one worklist run (local or on Dask), turned into progress reports."""

    start: float
    total: int
    skipped: int
    finished: int = 0
    errors: int = 0
    load: float = 0.0
    compute: float = 0.0
    wait: float = 0.0

    def progress(
        self, stage: str, study: str = "", task: str = "", result: StudyResult | None = None
    ) -> WorklistProgress:
        elapsed = time.perf_counter() - self.start
        remaining = self.total - self.skipped - self.finished
        eta = elapsed / self.finished * remaining if self.finished else None
        return WorklistProgress(
            stage=stage,
            done=self.skipped + self.finished,
            total=self.total,
            skipped=self.skipped,
            errors=self.errors,
            study=study,
            task=task,
            elapsed=elapsed,
            eta=0.0 if remaining == 0 else eta,
            result=result,
        )


def worklist_steps(
    source: str | os.PathLike[str] | Discovery,
    models: Sequence[LoadedModel],
    config: WorklistConfig | None = None,
    done_ids: Collection[str] = (),
    cancel: threading.Event | None = None,
    loader: StudyLoader = load_study_scan,
    steps: TriageSteps = triage_steps,
    redo_ids: Collection[str] = (),
) -> Generator[WorklistProgress, None, WorklistReport]:
    """Triage every study under a root, yielding progress; returns the ranked report.

    Args:
        source: A root folder, or the result of :func:`discover_studies` on it.
        models: Loaded models with distinct tasks (e.g. ``load_default_models()``).
        config: Run settings.
        done_ids: Study ids to skip (in addition to those in an existing report).
        cancel: When set, the run stops after the current study.
        loader: Reads one study (runs on the loader thread); replaceable for tests and benchmarks.
        steps: The per-study triage generator (:func:`napari_elnet.inference.triage.triage_steps`).
        redo_ids: Study ids to triage again even when the report holds them; their old rows are
            replaced (e.g. a DICOM node's study that received more instances after its triage).

    Raises:
        ConfigurationError: No models, duplicate tasks, an unavailable device, a report inside the
            root, or an existing report that is not a worklist report (all before any study is read).
        NoUsableSeriesError: ``source`` is not a folder.
    """
    config = config or WorklistConfig()
    discovery = source if isinstance(source, Discovery) else discover_studies(source)
    check_models(models)
    resolve_device(config.device)
    redo = set(redo_ids)
    previous = [r for r in previous_results(discovery.root, config) if r.study_id not in redo]
    skip = (set(done_ids) - redo) | {r.study_id for r in previous}
    todo = [s for s in discovery.studies if s.study_id not in skip]
    tally = RunTally(
        time.perf_counter(), len(discovery.studies), len(discovery.studies) - len(todo)
    )
    keeper = MemoryKeeper(config.release_margin_mb) if config.release_memory else None
    results: dict[int, StudyResult] = {}  # by position in ``todo``: the report keeps that order
    cancelled = False
    lanes = lane_count(config, len(todo))
    yield tally.progress("start")
    with (
        _study_loader(loader, config, len(todo)) as load,
        Prefetcher(todo, load, config.prefetch) as prefetcher,
    ):
        run = (
            _one_lane(prefetcher, models, config, steps, tally)
            if lanes == 1
            else _lanes(prefetcher, models, config, steps, tally, lanes)
        )
        with closing(run):
            for event in run:
                if isinstance(event, WorklistProgress):
                    yield event
                    continue
                index, result = event
                results[index] = result if config.include_phi else without_phi(result)
                tally.finished += 1
                tally.errors += result.status == "error"
                if config.report is not None:
                    write_report(
                        config.report, [*previous, *_in_order(results)], config.include_phi
                    )
                if keeper is not None:
                    keeper.after_item()
                yield tally.progress("study", result.study, result=results[index])
                if cancel is not None and cancel.is_set() and tally.finished < len(todo):
                    cancelled = True
                    break
    yield tally.progress("done")
    return WorklistReport(
        root=discovery.root,
        results=tuple(ranked([*previous, *_in_order(results)])),
        problems=discovery.problems,
        skipped=tally.skipped,
        cancelled=cancelled,
        elapsed=time.perf_counter() - tally.start,
        load_seconds=tally.load,
        compute_seconds=tally.compute,
        wait_seconds=tally.wait,
    )


def lane_count(config: WorklistConfig, studies: int) -> int:
    """Lanes of a run of ``studies`` studies: ``config.lanes``, or when it is None one per usable
    core on the CPU and one on a GPU; never more than the studies (at least 1)."""
    if config.lanes is not None:
        lanes = config.lanes
    elif resolve_device(config.device).type == "cpu":
        lanes = usable_cpus()
    else:
        lanes = 1
    return max(1, min(lanes, studies))


def _in_order(results: dict[int, StudyResult]) -> list[StudyResult]:
    """The results in the order of their studies."""
    return [results[index] for index in sorted(results)]


_Event = WorklistProgress | tuple[int, StudyResult]
"""What a run of the models yields: a task's progress, or a finished study (its position in the
studies to triage, its result)."""


def _one_lane(
    prefetcher: Prefetcher[StudyRef, StudyData],
    models: Sequence[LoadedModel],
    config: WorklistConfig,
    steps: TriageSteps,
    tally: RunTally,
) -> Generator[_Event, None, None]:
    """The studies triaged one after the other on the caller's thread."""
    waited = time.perf_counter()
    for index, entry in enumerate(prefetcher):
        tally.wait += time.perf_counter() - waited
        tally.load += entry.seconds
        result = yield from _triage_one(entry, models, config, steps, tally)
        yield index, result
        waited = time.perf_counter()


def _lanes(
    prefetcher: Prefetcher[StudyRef, StudyData],
    models: Sequence[LoadedModel],
    config: WorklistConfig,
    steps: TriageSteps,
    tally: RunTally,
    lanes: int,
) -> Generator[_Event, None, None]:
    """The studies triaged on ``lanes`` threads, each with its own copy of the models (the
    explanation hooks a model) and its own share of torch's threads.

    torch's thread count of a thread is its own, but setting it also sets the count that threads
    started later begin with; the caller's count is set back at the end.
    """
    before = torch.get_num_threads()
    threads = max(1, before // lanes)
    copies = [models, *([_copied(m) for m in models] for _ in range(lanes - 1))]
    tallies = [RunTally(tally.start, tally.total, tally.skipped) for _ in range(lanes)]

    def setup(lane: int) -> None:
        torch.set_num_threads(threads)

    def work(
        entry: Loaded[StudyRef, StudyData], lane: int
    ) -> Generator[WorklistProgress, None, StudyResult]:
        return _triage_one(entry, copies[lane], config, steps, tallies[lane])

    running = Lanes(iter(prefetcher), work, lanes, setup)
    try:
        with running:
            for event in running:
                if isinstance(event, Step):
                    yield tally.progress("task", event.progress.study, event.progress.task)
                    continue
                tally.load += event.item.seconds
                tally.compute = sum(t.compute for t in tallies)
                tally.wait = sum(running.wait_seconds)
                yield event.index, event.result
    finally:
        torch.set_num_threads(before)
        tally.compute = sum(t.compute for t in tallies)
        tally.wait = sum(running.wait_seconds)


def _copied(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` with its own copy of the network (a few MB for ELNet)."""
    return replace(loaded, model=copy.deepcopy(loaded.model))


def run_worklist(
    source: str | os.PathLike[str] | Discovery,
    models: Sequence[LoadedModel],
    config: WorklistConfig | None = None,
    on_progress: Callable[[WorklistProgress], None] | None = None,
) -> WorklistReport:
    """Run :func:`worklist_steps` to the end, passing each progress to ``on_progress``."""
    return run_to_end(worklist_steps(source, models, config), on_progress)


def triage_study(
    ref: StudyRef,
    models: Sequence[LoadedModel],
    config: WorklistConfig | None = None,
    loader: StudyLoader = load_study_scan,
    steps: TriageSteps = triage_steps,
) -> StudyResult:
    """Load and triage one study as :func:`worklist_steps` does each of its studies (a failure
    becomes an ``error`` result), for engines that hand out studies one by one (Dask workers)."""
    config = config or WorklistConfig()
    start = time.perf_counter()
    value: StudyData | None = None
    error: BaseException | None = None
    try:
        value = loader(ref)
    except Exception as exc:  # becomes the study's error result, as on the loader thread
        error = exc
    entry: Loaded[StudyRef, StudyData] = Loaded(ref, value, error, time.perf_counter() - start)
    return run_to_end(
        _triage_one(entry, models, config, steps, RunTally(time.perf_counter(), 1, 0))
    )


def _study_loader(
    loader: StudyLoader, config: WorklistConfig, studies: int
) -> AbstractContextManager[StudyLoader]:
    """``loader`` itself, or the default loader reading in a worker process (see
    ``WorklistConfig.load_process``).

    The worker runs :func:`napari_elnet.io.study.read_files` (it imports neither torch nor the
    worklist); the parent only waits for and unpickles the series. A run of one study (the DICOM
    node's) reads in this process: there is no compute to overlap, and starting the worker would
    only add its start-up to the study's latency.
    """
    if _loads_in_process(config) and loader is load_study_scan and studies > 1:
        return _ProcessLoader(LoaderProcess(read_files))
    return nullcontext(loader)


def _loads_in_process(config: WorklistConfig) -> bool:
    """``config.load_process``, or when it is None, whether the models run on a GPU."""
    if config.load_process is not None:
        return config.load_process
    return resolve_device(config.device).type != "cpu"


class _ProcessLoader:
    """``load_study_scan`` reading through a LoaderProcess, which it closes on exit."""

    def __init__(self, process: LoaderProcess[StudyScan]) -> None:
        self.process = process

    def __enter__(self) -> StudyLoader:
        return functools.partial(load_study_scan, read=self.process)

    def __exit__(self, *exc: object) -> None:
        self.process.close()


def check_models(models: Sequence[LoadedModel]) -> None:
    """At least one model, one per task."""
    if not models:
        raise ConfigurationError("no models to run: give at least one model")
    tasks = [m.info.task for m in models]
    if len(set(tasks)) != len(tasks):
        raise ConfigurationError(f"each task needs exactly one model, got tasks {tasks}")


def previous_results(root: Path, config: WorklistConfig) -> list[StudyResult]:
    """The studies of an existing report to resume from (the report must lie outside the root)."""
    if config.report is None:
        return []
    from napari_elnet.common.outputs import ensure_outside_inputs

    ensure_outside_inputs(config.report, [root])
    return read_report(config.report) if config.resume else []


def _triage_one(
    entry: Loaded[StudyRef, StudyData],
    models: Sequence[LoadedModel],
    config: WorklistConfig,
    steps: TriageSteps,
    tally: RunTally,
) -> Generator[WorklistProgress, None, StudyResult]:
    """Run the models on one loaded study; any failure becomes an ``error`` result."""
    ref = entry.item
    start = time.perf_counter()
    base = StudyResult(
        study_id=ref.study_id, study=ref.name, status="error", phi=ref.phi, folders=ref.folders
    )
    series, warnings = _series_and_warnings(entry.value)
    if entry.error is not None or not series:
        error = entry.error or ElnetError(f"study {ref.name}: no image series")
        return _failed(replace(base, warnings=warnings), error, entry.seconds)

    def show(progress: TriageProgress) -> WorklistProgress | None:
        return (
            tally.progress("task", ref.name, progress.task) if progress.stage == "prepare" else None
        )

    try:  # one study's failure must not stop the worklist
        end = yield from relay(steps(series, models, config.device), show=show, errors=(Exception,))
    finally:
        tally.compute += time.perf_counter() - start
    if end.error is not None:
        return _failed(
            replace(base, warnings=warnings),
            end.error,
            entry.seconds + time.perf_counter() - start,
        )
    task_results: list[TaskResult] = end.result or []
    rows = tuple(_task_row(r, warnings) for r in task_results)
    score = suspicion_score(
        ((r.task, r.probability, r.threshold) for r in rows if r.probability is not None),
        config.suspicion,
    )
    return StudyResult(
        study_id=ref.study_id,
        study=ref.name,
        status="ok",
        suspicion=score,
        tasks=rows,
        phi=ref.phi,
        folders=ref.folders,
        seconds=entry.seconds + time.perf_counter() - start,
        warnings=warnings,
    )


def _series_and_warnings(value: StudyData | None) -> tuple[Sequence[Series], tuple[str, ...]]:
    """The series of a loaded study and one warning per file of it that could not be loaded."""
    if value is None:
        return (), ()
    if isinstance(value, StudyScan):
        return value.series, problem_warnings(value)
    return value, ()


def _failed(base: StudyResult, error: BaseException, seconds: float) -> StudyResult:
    """``base`` with the error's reason."""
    if isinstance(error, OSError) and error.filename:  # name the file, not its folders (PHI)
        message = f"{error.strerror or 'cannot read'}: {Path(str(error.filename)).name}"
    else:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    reason = message if isinstance(error, ElnetError) else f"{type(error).__name__}: {message}"
    return replace(base, reason=reason, seconds=seconds)


def _task_row(result: TaskResult, study_warnings: tuple[str, ...] = ()) -> TaskRow:
    """The report row of one TaskResult (without its heatmap), with the study's own warnings
    (files not loaded) after the result's."""
    a = result.applicability
    return TaskRow(
        task=result.task,
        probability=None if result.probability is None else float(result.probability),
        decision=None if result.decision is None else bool(result.decision),
        threshold=float(result.threshold),
        top_slice=None if result.top_slice is None else int(result.top_slice),
        plane=result.plane,
        series=result.series_name,
        model=result.model_identity,
        series_uid=result.series_uid,
        warnings=(*result.warnings, *study_warnings),
        applicable=a.applicable,
        applicability_score=a.score,
        applicability_threshold=a.threshold,
        reasons=a.reasons,
        outside_plane=a.outside_plane,
    )
