"""Crash safety of the worklist report (issue 10): a run killed with SIGKILL resumes without losing or
duplicating rows.

A child process (forked: nothing imported again) triages a folder of tiny studies into a CSV report
and is killed with SIGKILL while studies are still being triaged (after the report holds at least one
row; the kill lands at a random point of the next study, possibly during a report write). Then:

1. the report on disk is a complete, readable report (atomic rewrite: never half a file);
2. every row in it is a distinct study, with the same values as before the resume;
3. the resumed run triages only the studies the report does not hold, and the final report has every
   study exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from support.synthetic_data import single_thread
from support.worklist_factory import make_models, write_dicom_study

from napari_elnet.models.model_file import LoadedModel, load_model
from napari_elnet.worklist import WorklistConfig, discover_studies, read_report, run_worklist

one_thread = pytest.fixture(single_thread, autouse=True)
STUDIES = 6
LANES = 2
"""Two studies triaged at a time: results arrive out of order, the report must still be whole."""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedModel]:
    return make_models(tmp_path_factory.mktemp("models"), [("acl", "axial")])


def _child(root: str, model: str, report: str) -> None:
    """Triage ``root`` into ``report``, slowly enough (0.1 s per study: the lanes wait for the
    progress callback) to be killed midway."""
    import torch

    torch.set_num_threads(1)

    def slow(progress: object) -> None:
        time.sleep(0.05)

    config = WorklistConfig(
        device="cpu", report=Path(report), load_process=False, prefetch=1, lanes=LANES
    )
    run_worklist(root, [load_model(model)], config, slow)


def test_killed_worklist_run_resumes_without_losing_or_duplicating_rows(
    models: list[LoadedModel], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    for i in range(STUDIES):
        write_dicom_study(
            root / f"case{i}", f"1.2.826.0.1.3680043.8.498.{300 + i}", accession=f"ACC{i}"
        )
    report = tmp_path / "out" / "report.csv"
    child = multiprocessing.get_context("fork").Process(
        target=_child, args=(str(root), str(models[0].path), str(report))
    )
    child.start()
    # Wait for the first reported row: bounded by a poll count (no clock; at most ~4 min).
    for _ in range(24_000):
        if not child.is_alive() or (report.exists() and len(read_report(report)) >= 1):
            break
        child.join(0.01)
    time.sleep(random.Random(0).uniform(0.0, 0.3))
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(30)
    assert child.exitcode == -signal.SIGKILL

    before = read_report(report)
    assert 1 <= len(before) < STUDIES, "the kill must land while studies remain"
    assert len({r.study_id for r in before}) == len(before)
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.csv"]

    resumed = run_worklist(
        root, models, WorklistConfig(device="cpu", report=report, load_process=False)
    )
    after = read_report(report)
    assert resumed.skipped == len(before)
    assert sorted(r.study for r in after) == [f"ACC{i}" for i in range(STUDIES)]
    assert len({r.study_id for r in after}) == STUDIES
    by_id = {r.study_id: r for r in after}
    for row in before:
        assert by_id[row.study_id].tasks == row.tasks
    assert {s.study_id for s in discover_studies(root).studies} == set(by_id)
