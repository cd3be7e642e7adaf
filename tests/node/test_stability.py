"""A study is complete ``stable_seconds`` after its last instance; restarts pick up the rest."""

from __future__ import annotations

from pathlib import Path

from napari_elnet.node.stability import (
    StabilityWatcher,
    StudyActivity,
    study_id_of,
    unfinished_studies,
)
from napari_elnet.node.store import Store
from napari_elnet.worklist.discovery import uid_hash


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_complete_only_after_the_quiet_time() -> None:
    clock, done = Clock(), []
    watcher = StabilityWatcher(2.0, done.append, clock)
    watcher.seen("1.2", size=10)
    clock.now += 1.5
    watcher.seen("1.2", size=5)  # a late instance restarts the quiet time
    clock.now += 1.9
    assert watcher.poll() == []
    clock.now += 0.1
    completed = watcher.poll()
    assert completed == [StudyActivity("1.2", 2, 15, 101.5)]
    assert done == completed
    assert watcher.receiving() == []
    assert watcher.poll() == []  # handed over once


def test_studies_complete_independently_oldest_first() -> None:
    clock, done = Clock(), []
    watcher = StabilityWatcher(1.0, done.append, clock)
    watcher.seen("1.1")
    clock.now += 0.5
    watcher.seen("1.2")
    clock.now += 0.6
    assert [a.study_uid for a in watcher.poll()] == ["1.1"]
    clock.now += 0.5
    assert [a.study_uid for a in watcher.poll()] == ["1.2"]
    assert [a.study_uid for a in done] == ["1.1", "1.2"]


def test_study_id_is_the_worklist_id() -> None:
    assert study_id_of("1.2.3") == f"dicom-{uid_hash('1.2.3')}"


def test_unfinished_studies_are_those_not_in_the_report(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for study in ("1.1", "1.2", "1.3"):
        store.write(study, "9.9", "9.9.1", b"x")
    assert unfinished_studies(store, {study_id_of("1.2")}) == ["1.1", "1.3"]
