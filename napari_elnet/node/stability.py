"""When is a received study complete? ``stable_seconds`` after its last instance (Orthanc's StableAge).

DICOM has no "end of study" message: a scanner or PACS sends instances, possibly over several
associations, and stops. A study is called complete once no instance of it has arrived for
``stable_seconds``; an instance arriving later makes it "receiving" again.

Restarts: :func:`unfinished_studies` lists the studies of the store that the report does not hold yet;
the node feeds them to the watcher on start, so a study received before a crash (or ``kill -9``) is
completed and triaged after the restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from napari_elnet.node.store import Store
from napari_elnet.worklist.discovery import uid_hash


def study_id_of(study_uid: str) -> str:
    """The worklist's study id of a StudyInstanceUID (same rule as ``napari-elnet triage``)."""
    return f"dicom-{uid_hash(study_uid)}"


def unfinished_studies(store: Store, done_ids: Collection[str]) -> list[str]:
    """StudyInstanceUIDs in ``store`` whose study id is not in ``done_ids`` (e.g. a report's ids)."""
    done = set(done_ids)
    return [uid for uid in store.studies() if study_id_of(uid) not in done]


@dataclass(frozen=True)
class StudyActivity:
    """What the watcher knows of one study still receiving.

    Attributes:
        study_uid: StudyInstanceUID.
        instances: Instances received since the study was first seen by this watcher.
        bytes: Their bytes.
        last: ``clock()`` time of the last instance (s).
    """

    study_uid: str
    instances: int
    bytes: int
    last: float


class StabilityWatcher:
    """Tracks studies receiving and hands each one over once it has been quiet for long enough.

    Args:
        stable_seconds: Quiet time after which a study is complete.
        on_complete: Called with the StudyActivity of each completed study (on the watcher's thread
            when started, else on the caller of :meth:`poll`).
        clock: Monotonic time source in seconds (replaceable in tests).
    """

    def __init__(
        self,
        stable_seconds: float,
        on_complete: Callable[[StudyActivity], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stable_seconds = stable_seconds
        self._on_complete = on_complete
        self._clock = clock
        self._studies: dict[str, StudyActivity] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seen(self, study_uid: str, size: int = 0, count: int = 1) -> StudyActivity:
        """Record ``count`` instances of ``study_uid`` arriving now; returns the updated activity."""
        with self._lock:
            old = self._studies.get(study_uid)
            activity = StudyActivity(
                study_uid,
                (old.instances if old else 0) + count,
                (old.bytes if old else 0) + size,
                self._clock(),
            )
            self._studies[study_uid] = activity
            return activity

    def receiving(self) -> list[StudyActivity]:
        """Studies not complete yet, oldest activity first."""
        with self._lock:
            return sorted(self._studies.values(), key=lambda a: a.last)

    def poll(self) -> list[StudyActivity]:
        """Complete every study quiet for ``stable_seconds``; returns them (oldest first)."""
        now = self._clock()
        with self._lock:
            due = [a for a in self._studies.values() if now - a.last >= self.stable_seconds]
            for activity in due:
                del self._studies[activity.study_uid]
        due.sort(key=lambda a: a.last)
        for activity in due:
            self._on_complete(activity)
        return due

    def start(self) -> None:
        """Poll on a background thread, every tenth of the stable time (0.05 to 0.5 s)."""
        if self._thread is not None:
            return
        self._stop.clear()
        interval = min(0.5, max(0.05, self.stable_seconds / 10))

        def run() -> None:
            while not self._stop.wait(interval):
                self.poll()

        self._thread = threading.Thread(target=run, name="elnet-node-stability", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (studies still receiving stay in memory; the store keeps their files)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
