"""Triage of completed studies, one at a time, off the network threads.

Each study goes through the worklist machinery (:func:`napari_elnet.worklist.worklist_steps` on the
study's folder with the node's report), so the report has the format and resume rules of
``napari-elnet triage``: a study already in the report is not triaged again, and the report is
rewritten atomically after each study. The models' full results (heatmaps) are captured on the way
to write the DICOM results (structured report, parametric map, key image) into
``STORE/.results/<study>/``, which are then sent back with C-STORE when a destination is set.

Late instances: a study is complete after a quiet time, so instances that arrive after it was
triaged (a slow sender, a series sent later) make it complete again. The number of instances each
triage saw is kept in ``STORE/.results/<study>/triage.json``; when the store holds more, the study is
triaged again, its report row replaced and its DICOM results written (with new UIDs) and sent anew.
The same instances sent twice change nothing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_elnet.common.atomic import write_text_atomic
from napari_elnet.common.errors import NoUsableSeriesError, one_line
from napari_elnet.common.series import Series
from napari_elnet.common.steps import run_to_end
from napari_elnet.inference.triage import TaskResult, TriageProgress, triage_steps
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.config import Peer
from napari_elnet.node.events import EventCallback, NodeEvent
from napari_elnet.node.send import send_files
from napari_elnet.node.stability import study_id_of, unfinished_studies
from napari_elnet.node.store import Store
from napari_elnet.worklist.batch import WorklistConfig, worklist_steps
from napari_elnet.worklist.discovery import discover_studies
from napari_elnet.worklist.report import StudyResult, check_report_path, read_report

LOGGER = logging.getLogger(__name__)
TRIAGE_RECORD = "triage.json"
"""File in a study's results folder holding how many instances its last triage saw."""


@dataclass(frozen=True)
class PipelineConfig:
    """What happens to a completed study.

    Attributes:
        report: Worklist report (.csv or .json) the studies are appended to; must lie outside the
            study folders (the store's top level is fine).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        include_phi: Keep patient data in the report.
        dicom_results: Write the DICOM results of each triaged study.
        send_to: Where to C-STORE the DICOM results (None: keep them in the store only).
        calling_ae: Our AE title when sending.
    """

    report: Path
    device: str = "auto"
    include_phi: bool = False
    dicom_results: bool = True
    send_to: Peer | None = None
    calling_ae: str = "ELNET"

    def __post_init__(self) -> None:
        object.__setattr__(self, "report", check_report_path(self.report))


@dataclass(frozen=True)
class Outcome:
    """What became of one completed study.

    Attributes:
        study_uid: StudyInstanceUID.
        result: Its report row; None when the report already held it (triaged before, and no
            instance arrived since).
        files: DICOM results written.
        sent: Files stored at ``send_to``.
        error: Why writing or sending the results failed ("" when they did not).
        late: Instances that arrived after the study's previous triage (0: first triage).
    """

    study_uid: str
    result: StudyResult | None
    files: tuple[Path, ...] = ()
    sent: int = 0
    error: str = ""
    late: int = 0


@dataclass
class _Captured:
    """The series and TaskResults of the study the worklist just triaged."""

    series: Sequence[Series] = ()
    results: Sequence[TaskResult] = ()


def triaged_ids(report: Path) -> set[str]:
    """Study ids the report already holds."""
    return {r.study_id for r in read_report(report)}


def triaged_instances(store: Store, study_uid: str) -> int | None:
    """How many instances the study had when it was last triaged (None: no record of it)."""
    path = store.results_dir(study_uid) / TRIAGE_RECORD
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["instances"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def studies_to_resume(store: Store, report: Path) -> list[str]:
    """Stored studies to triage on start: those the report does not hold, and those that received
    instances after their last triage (e.g. just before a crash)."""
    done = triaged_ids(report)
    resume = unfinished_studies(store, done)
    for study_uid in store.studies():
        seen = triaged_instances(store, study_uid) if study_id_of(study_uid) in done else None
        if seen is not None and len(store.instances(study_uid)) > seen:
            resume.append(study_uid)
    return sorted(resume)


def _record_triage(store: Store, study_uid: str, instances: int) -> None:
    folder = store.results_dir(study_uid)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / TRIAGE_RECORD, json.dumps({"instances": instances}) + "\n")


def triage_study(
    store: Store,
    study_uid: str,
    models: Sequence[LoadedModel],
    config: PipelineConfig,
    on_event: EventCallback | None = None,
) -> Outcome:
    """Triage one stored study, append it to the report, write and send its DICOM results.

    A study the report already holds is skipped, unless the store now holds more of its instances
    than its last triage saw: then it is triaged again and its row replaced.

    Raises:
        ConfigurationError: The report exists but is not a worklist report, or no models.
        NoUsableSeriesError: The study's folder holds no DICOM file.
    """
    captured = _Captured()

    def steps(
        series: Sequence[Series], run_models: Sequence[LoadedModel], device: str
    ) -> Generator[TriageProgress, None, list[TaskResult]]:
        results = yield from triage_steps(series, run_models, device)
        captured.series, captured.results = series, results
        return results

    study_id = study_id_of(study_uid)
    instances = len(store.instances(study_uid))  # counted first: later ones complete it again
    before = triaged_instances(store, study_uid)
    late = instances - before if before is not None and instances > before else 0
    discovery = discover_studies(store.study_dir(study_uid))
    worklist = WorklistConfig(
        device=config.device, prefetch=1, report=config.report, include_phi=config.include_phi
    )
    redo = (study_id,) if late else ()
    report = run_to_end(worklist_steps(discovery, models, worklist, steps=steps, redo_ids=redo))
    result = next((r for r in report.results if r.study_id == study_id), None)
    if report.skipped:
        if before is None:  # triaged by an earlier run without a record: count from now on
            _record_triage(store, study_uid, instances)
        return Outcome(study_uid, None)
    if result is None:  # the folder held no readable DICOM: report it like the worklist does
        raise NoUsableSeriesError(f"study {study_id}: no DICOM files found in the store")
    _record_triage(store, study_uid, instances)
    if late:
        for old in store.results_dir(study_uid).glob("*.dcm"):  # built from part of the study
            old.unlink()
    if on_event is not None:
        again = f"triaged again: {late} instance(s) arrived after its first triage" if late else ""
        on_event(NodeEvent("triaged", study_uid, study_id, result=result, message=again, late=late))
    if not config.dicom_results or not captured.results:
        return Outcome(study_uid, result, late=late)
    try:
        files = _write_results(store, study_uid, captured, models)
        sent = 0
        if config.send_to is not None and files:
            sent = send_files(files, config.send_to, config.calling_ae)
            if on_event is not None:
                on_event(
                    NodeEvent(
                        "sent", study_uid, study_id, message=f"{sent} file(s) to {config.send_to}"
                    )
                )
    except Exception as exc:  # the triage stands; the results problem is reported
        message = one_line(exc)
        LOGGER.error("study %s: DICOM results: %s", study_id, message)
        return Outcome(study_uid, result, error=message, late=late)
    return Outcome(study_uid, result, tuple(files), sent, late=late)


def _write_results(
    store: Store, study_uid: str, captured: _Captured, models: Sequence[LoadedModel]
) -> list[Path]:
    """The DICOM results of one study in ``STORE/.results/<study>/`` (only these are sent)."""
    from napari_elnet.dicom.results import write_dicom_results

    out_dir = store.results_dir(study_uid)
    out_dir.mkdir(parents=True, exist_ok=True)
    return list(write_dicom_results(captured.series, captured.results, models, out_dir))


class TriageWorker:
    """One background thread triaging the completed studies in arrival order.

    Args:
        store: The node's store.
        models: Loaded models (one per task).
        config: Report, device, results and destination.
        on_event: Receives ``triaged``, ``sent`` and ``error`` events (on the worker thread).
    """

    def __init__(
        self,
        store: Store,
        models: Sequence[LoadedModel],
        config: PipelineConfig,
        on_event: EventCallback | None = None,
    ) -> None:
        self.store = store
        self.models = list(models)
        self.config = config
        self._on_event = on_event
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.outcomes: list[Outcome] = []

    def submit(self, study_uid: str) -> None:
        """Queue a completed study."""
        self._queue.put(study_uid)

    def pending(self) -> int:
        """Studies queued and not started."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="elnet-node-triage", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Drop the queue; the study in progress finishes (joined up to ``timeout`` s, 0: no wait)."""
        if self._thread is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        if timeout > 0:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (study_uid := self._queue.get()) is not None:
            try:
                outcome = triage_study(
                    self.store, study_uid, self.models, self.config, self._on_event
                )
            except Exception as exc:  # one study must never stop the node
                LOGGER.exception("triage of study %s failed", study_uid)
                outcome = Outcome(study_uid, None, error=f"{type(exc).__name__}: {exc}")
            self.outcomes.append(outcome)
            if outcome.result is None and not outcome.error and self._on_event is not None:
                message = "already in the report: not triaged again"
                self._on_event(
                    NodeEvent("skipped", study_uid, study_id_of(study_uid), message=message)
                )
            if outcome.error and self._on_event is not None:
                self._on_event(
                    NodeEvent("error", study_uid, study_id_of(study_uid), message=outcome.error)
                )
