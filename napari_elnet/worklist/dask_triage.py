"""Archive triage on a Dask cluster: the worklist of :mod:`napari_elnet.worklist.batch`, with its
studies handed out to Dask workers instead of one process.

The client discovers the studies once (:func:`~napari_elnet.worklist.discover_studies`), skips
those an existing report already holds, and submits one task per study, keeping a bounded window
of tasks in flight. Each worker loads the models once (:class:`ModelsPlugin`, a Dask worker plugin,
so a worker that joins or is restarted loads them too) and runs the worklist's own per-study
function (:func:`~napari_elnet.worklist.batch.triage_study`) on every study it gets. Results come
back as they finish (``as_completed``) into the same ranked, resumable report, rewritten atomically
at most every :data:`REPORT_INTERVAL` seconds and at the end.

A worker that dies takes its running study with it: the scheduler hands that study to another
worker (Dask counts a study that has killed ``distributed.scheduler.allowed-failures`` workers as
lost; it then becomes an ``error`` row, as does a task that raised after its ``retries``). Each
study appears once in the report.

Workers must see the studies and model files under the same paths as the client (a shared file
system) and have napari-elnet installed. ``docs/distributed.md`` shows SLURM and Kubernetes set-ups.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.steps import run_to_end
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.worklist.batch import (
    RunTally,
    WorklistConfig,
    WorklistProgress,
    WorklistReport,
    check_models,
    previous_results,
    triage_study,
)
from napari_elnet.worklist.discovery import Discovery, StudyRef, discover_studies
from napari_elnet.worklist.report import StudyResult, ranked, without_phi, write_report

PLUGIN_NAME = "napari-elnet-models"
REPORT_INTERVAL = 2.0
"""Seconds between two rewrites of the report (a killed client loses at most this much)."""
RETRIES = 2
"""Re-runs of a study whose task raised (e.g. a passing I/O error of the shared file system)."""

try:  # the plugin base class, when the optional dask extra is installed
    from distributed import WorkerPlugin as _PluginBase
except ImportError:  # pragma: no cover - checked by dask_available()
    _PluginBase = object  # type: ignore[assignment,misc]


def dask_available() -> bool:
    """True when ``dask[distributed]`` is installed (``pip install napari-elnet[dask]``)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def load_models(model_files: Sequence[str]) -> list[LoadedModel]:
    """The models of ``model_files``, or the shipped default models when there are none."""
    if model_files:
        from napari_elnet.models.model_file import load_model

        return [load_model(path) for path in model_files]
    from napari_elnet.models.defaults import load_default_models

    return load_default_models()


class ModelsPlugin(_PluginBase):  # type: ignore[misc,valid-type]
    """Dask worker plugin: loads the models once per worker, when the worker starts.

    Attributes:
        model_files: Model files (absolute paths the workers can read); empty: the default models.
        models: The loaded models (on the worker's copy, after :meth:`setup`).
        loads: How often this worker loaded them (1).
    """

    name = PLUGIN_NAME

    def __init__(self, model_files: Sequence[str]) -> None:
        self.model_files = tuple(str(Path(p).resolve()) for p in model_files)
        self.models: list[LoadedModel] = []
        self.loads = 0

    def setup(self, worker: Any) -> None:
        """Load the models into this worker (called by Dask on every worker, also new ones)."""
        self.models = load_models(self.model_files)
        self.loads += 1


def _triage_on_worker(ref: StudyRef, config: WorklistConfig) -> StudyResult:
    """The Dask task: one study with this worker's models."""
    from distributed import get_worker

    plugin: Any = get_worker().plugins[PLUGIN_NAME]  # the plugin registered above
    return triage_study(ref, plugin.models, config)


def parse_address(address: str) -> tuple[str | None, int]:
    """``local:N`` -> (None, N) for a local cluster of N workers; else (scheduler address, 0).

    Raises:
        ConfigurationError: ``local:`` without a worker count >= 1.
    """
    if address.startswith("local:"):
        text = address.removeprefix("local:")
        if not text.isdigit() or int(text) < 1:
            raise ConfigurationError(
                f"--dask local:N needs a number of workers >= 1, got {address!r}"
            )
        return None, int(text)
    if not address:
        raise ConfigurationError("--dask needs a scheduler address or local:N")
    return address, 0


@contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` connected to ``address`` (a running scheduler, e.g.
    ``tcp://host:8786``) or to a new local cluster for ``local:N`` (closed at the end)."""
    if not dask_available():
        raise ConfigurationError("--dask needs dask[distributed]: pip install 'napari-elnet[dask]'")
    from distributed import Client, LocalCluster

    scheduler, workers = parse_address(address)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}"
            ) from exc
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        yield client


def _lost(ref: StudyRef, error: BaseException) -> StudyResult:
    """The ``error`` row of a study whose task failed on the cluster (not in the study)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return StudyResult(
        study_id=ref.study_id,
        study=ref.name,
        status="error",
        reason=f"{type(error).__name__} on the Dask cluster: {message}"[:300],
        phi=ref.phi,
        folders=ref.folders,
    )


def dask_worklist_steps(
    source: str | os.PathLike[str] | Discovery,
    address: str,
    model_files: Sequence[str] = (),
    config: WorklistConfig | None = None,
    cancel: threading.Event | None = None,
    window: int | None = None,
    on_client: Callable[[Any], None] | None = None,
) -> Generator[WorklistProgress, None, WorklistReport]:
    """Triage every study under a root on a Dask cluster, yielding progress; returns the report.

    Args:
        source: A root folder, or the result of :func:`discover_studies` on it.
        address: A Dask scheduler address, or ``local:N`` for a local cluster of N workers.
        model_files: Model files every worker loads once; empty: the default models.
        config: The worklist settings (device, report, resume, PHI, suspicion); the report is
            written by this process only.
        cancel: When set, no further study is submitted and the run stops at the next result.
        window: Most studies in flight (default: 4 per worker thread, at least 8).
        on_client: Called with the connected client before any study is submitted (tests use it
            to watch or disturb the cluster).

    Raises:
        ConfigurationError: as :func:`~napari_elnet.worklist.worklist_steps`, or no scheduler.
    """
    config = config or WorklistConfig()
    discovery = source if isinstance(source, Discovery) else discover_studies(source)
    models = load_models(model_files)  # fails here, before a cluster starts, on a bad file
    check_models(models)
    previous = previous_results(discovery.root, config)
    done_ids = {r.study_id for r in previous}
    todo = [s for s in discovery.studies if s.study_id not in done_ids]
    tally = RunTally(
        time.perf_counter(), len(discovery.studies), len(discovery.studies) - len(todo)
    )
    results: dict[str, StudyResult] = {}
    cancelled = False
    yield tally.progress("start")
    worker_config = replace(config, report=None)
    with dask_client(address) as client:
        from distributed import as_completed

        client.register_plugin(ModelsPlugin(model_files), name=PLUGIN_NAME)
        if on_client is not None:
            on_client(client)
        threads = sum(client.nthreads().values()) or 1
        limit = window or max(8, 4 * threads)
        pending = iter(todo)
        refs: dict[str, StudyRef] = {}

        def submit() -> Any | None:
            ref = next(pending, None)
            if ref is None:
                return None
            future = client.submit(
                _triage_on_worker, ref, worker_config, retries=RETRIES, pure=False
            )
            refs[future.key] = ref
            return future

        running = as_completed([f for f in (submit() for _ in range(limit)) if f is not None])
        written = time.perf_counter()
        for future in running:
            ref = refs.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # retries used up, or the study killed several workers
                result = _lost(ref, exc)
            if ref.study_id in results:
                continue
            if cancel is not None and cancel.is_set():
                cancelled = True
            elif (nxt := submit()) is not None:
                running.add(nxt)
            result = result if config.include_phi else without_phi(result)
            results[ref.study_id] = result
            tally.finished += 1
            tally.errors += result.status == "error"
            tally.compute += result.seconds or 0.0
            if config.report is not None and time.perf_counter() - written >= REPORT_INTERVAL:
                write_report(config.report, [*previous, *results.values()], config.include_phi)
                written = time.perf_counter()
            yield tally.progress("study", result.study, result=result)
            if cancelled:
                client.cancel(list(running.futures))
                break
    if config.report is not None:
        write_report(config.report, [*previous, *results.values()], config.include_phi)
    yield tally.progress("done")
    return WorklistReport(
        root=discovery.root,
        results=tuple(ranked([*previous, *results.values()])),
        problems=discovery.problems,
        skipped=tally.skipped,
        cancelled=cancelled or len(results) < len(todo),
        elapsed=time.perf_counter() - tally.start,
        load_seconds=0.0,
        compute_seconds=tally.compute,
        wait_seconds=0.0,
    )


def run_dask_worklist(
    source: str | os.PathLike[str] | Discovery,
    address: str,
    model_files: Sequence[str] = (),
    config: WorklistConfig | None = None,
    on_progress: Callable[[WorklistProgress], None] | None = None,
) -> WorklistReport:
    """Run :func:`dask_worklist_steps` to the end, passing each progress to ``on_progress``."""
    return run_to_end(dask_worklist_steps(source, address, model_files, config), on_progress)


__all__ = [
    "PLUGIN_NAME",
    "ModelsPlugin",
    "dask_available",
    "dask_client",
    "dask_worklist_steps",
    "load_models",
    "parse_address",
    "run_dask_worklist",
]
