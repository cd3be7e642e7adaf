"""Batch triage: results per task ranked by suspicion, resume, error rows, PHI, outputs, prefetch."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np
import pytest
from support.synthetic_data import single_thread
from support.worklist_factory import PATIENT_ID, PATIENT_NAME, make_models, write_dicom_study

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series
from napari_elnet.inference.triage import TaskResult, TriageProgress
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.worklist import (
    StudyRef,
    WorklistConfig,
    WorklistProgress,
    WorklistReport,
    discover_studies,
    load_study_ref,
    read_report,
    run_worklist,
    worklist_steps,
)

one_thread = pytest.fixture(single_thread, autouse=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedModel]:
    folder = tmp_path_factory.mktemp("models")
    return make_models(folder, [("acl", "axial"), ("abnormal", "axial")])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three tiny axial studies (one with a bright square) and nothing else."""
    folder = tmp_path / "root"
    for i in range(3):
        write_dicom_study(
            folder / f"case{i}", f"1.2.826.0.1.3680043.8.498.{200 + i}", accession=f"ACC{i}"
        )
    return folder


def _run(source: object, models: Sequence[LoadedModel], **kwargs: object) -> WorklistReport:
    config_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in WorklistConfig.__annotations__}
    generator = worklist_steps(
        source, models, WorklistConfig(device="cpu", **config_fields), **kwargs
    )  # type: ignore[arg-type]
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_every_model_runs_on_every_study_ranked_by_suspicion(
    root: Path, models: list[LoadedModel]
) -> None:
    progress: list[WorklistProgress] = []
    report = run_worklist(root, models, WorklistConfig(device="cpu"), progress.append)
    assert len(report.results) == 3
    assert all(r.status == "ok" for r in report.results)
    for result in report.results:
        assert [t.task for t in result.tasks] == ["acl", "abnormal"]
        assert all(0.0 <= t.probability <= 1.0 for t in result.tasks)
        assert all(0 <= t.top_slice < 3 for t in result.tasks)
        assert all(t.series == "1: AXIAL (axial)" for t in result.tasks)
        assert all(t.model.startswith(f"{t.task}/axial ") for t in result.tasks)
    scores = [r.suspicion for r in report.results]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert progress[0].stage == "start" and progress[-1].stage == "done"
    assert [p.done for p in progress if p.stage == "study"] == [1, 2, 3]
    for study in ("ACC0", "ACC1", "ACC2"):  # lanes interleave studies, never a study's tasks
        tasks = [p.task for p in progress if p.stage == "task" and p.study == study]
        assert tasks == ["acl", "abnormal"]
    finished = {p.study: n for n, p in enumerate(progress) if p.stage == "study"}
    started = {p.study: n for n, p in reversed(list(enumerate(progress))) if p.stage == "task"}
    assert all(started[study] < finished[study] for study in finished)
    assert progress[-1].eta == 0.0 and progress[-1].elapsed > 0


def test_resume_skips_studies_already_in_the_report(
    root: Path, models: list[LoadedModel], tmp_path: Path
) -> None:
    out = tmp_path / "out" / "report.csv"
    studies = discover_studies(root).studies
    first = _run(root, models, report=out, done_ids={studies[2].study_id})
    assert [r.study for r in first.results] != []
    assert sorted(r.study for r in read_report(out)) == ["ACC0", "ACC1"]
    loaded: list[str] = []

    def loader(ref: StudyRef) -> list[Series]:
        loaded.append(ref.name)
        return load_study_ref(ref)

    second = _run(root, models, report=out, loader=loader)
    assert loaded == ["ACC2"]
    assert second.skipped == 2
    assert sorted(r.study for r in second.results) == ["ACC0", "ACC1", "ACC2"]
    assert sorted(r.study for r in read_report(out)) == ["ACC0", "ACC1", "ACC2"]


def test_a_failing_study_is_an_error_row_not_a_crash(
    root: Path, models: list[LoadedModel], tmp_path: Path
) -> None:
    for path in (root / "case1").iterdir():
        path.write_bytes(path.read_bytes()[:-1000])  # headers kept, pixel data cut short
    out = tmp_path / "report.json"
    report = _run(root, models, report=out)
    statuses = {r.study: r.status for r in report.results}
    assert statuses == {"ACC0": "ok", "ACC1": "error", "ACC2": "ok"}
    failed = report.results[-1]
    assert failed.study == "ACC1" and failed.suspicion is None and failed.tasks == ()
    assert failed.reason.startswith("study ACC1: no usable image series")
    assert [r.status for r in read_report(out)] == ["ok", "ok", "error"]


@pytest.mark.parametrize(
    "settings",
    [{"lanes": 1}, {"lanes": 2}, {"lanes": 1, "load_process": True}],
    ids=["one lane", "two lanes", "loader process"],
)
def test_files_of_a_study_that_cannot_be_loaded_are_its_warnings(
    root: Path, models: list[LoadedModel], settings: dict[str, object]
) -> None:
    first = sorted((root / "case1").iterdir())[0]
    (root / "case1" / "zz_trunc.dcm").write_bytes(first.read_bytes()[:-1000])  # pixel data cut
    report = _run(root, models, **settings)
    by_study = {r.study: r for r in report.results}
    damaged = by_study["ACC1"]
    assert damaged.status == "ok" and damaged.suspicion is not None
    assert len(damaged.warnings) == 1
    assert damaged.warnings[0].startswith("zz_trunc.dcm: pixel data cannot be decoded")
    assert str(root) not in damaged.warnings[0] and "case1" not in damaged.warnings[0]
    assert all(damaged.warnings[0] in t.warnings for t in damaged.tasks)  # in the report rows
    assert by_study["ACC0"].warnings == () and by_study["ACC2"].warnings == ()
    assert all(damaged.warnings[0] not in t.warnings for t in by_study["ACC0"].tasks)


def test_compute_errors_are_rows_too(root: Path, models: list[LoadedModel]) -> None:
    def broken(series: Sequence[Series], models: Sequence[LoadedModel], device: str) -> Generator:
        yield TriageProgress("acl", "prepare", 0, 1)
        raise RuntimeError("out of memory")

    report = _run(root, models, steps=broken)
    assert {r.reason for r in report.results} == {"RuntimeError: out of memory"}


def test_file_errors_name_the_file_not_its_folders(root: Path, models: list[LoadedModel]) -> None:
    def unreadable(ref: StudyRef) -> list[Series]:
        raise PermissionError(13, "Permission denied", str(root / "Doe_Jane" / "IM0001.dcm"))

    report = _run(root, models, loader=unreadable)
    assert {r.reason for r in report.results} == {"PermissionError: Permission denied: IM0001.dcm"}


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_patient_data_only_with_include_phi(
    root: Path, models: list[LoadedModel], tmp_path: Path, suffix: str
) -> None:
    plain = tmp_path / f"plain{suffix}"
    report = _run(root, models, report=plain)
    text = plain.read_text()
    for secret in (PATIENT_NAME, PATIENT_ID, "case0", "1.2.826.0.1.3680043.8.498.200"):
        assert secret not in text
    assert all(r.phi.patient_name == "" for r in report.results)
    with_phi = tmp_path / f"phi{suffix}"
    report = _run(root, models, report=with_phi, include_phi=True)
    text = with_phi.read_text()
    assert PATIENT_NAME in text and PATIENT_ID in text and "case0" in text
    assert {r.phi.patient_id for r in report.results} == {PATIENT_ID}


def test_report_inside_root_is_refused_and_root_is_untouched(
    root: Path, models: list[LoadedModel], tmp_path: Path
) -> None:
    before = _listing(root)
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        _run(root, models, report=root / "case0" / "report.csv")
    _run(root, models, report=tmp_path / "outside.csv")
    assert _listing(root) == before


def test_unknown_report_suffix_and_bad_settings_are_refused(models: list[LoadedModel]) -> None:
    with pytest.raises(ConfigurationError, match=r"suffix must be one of \('.csv', '.json'\)"):
        WorklistConfig(report=Path("report.txt"))
    with pytest.raises(ConfigurationError, match="prefetch must be >= 1, got 0"):
        WorklistConfig(prefetch=0)


def test_no_models_or_duplicate_tasks_are_refused(root: Path, models: list[LoadedModel]) -> None:
    with pytest.raises(ConfigurationError, match="no models"):
        _run(root, [])
    with pytest.raises(ConfigurationError, match=r"exactly one model, got tasks \['acl', 'acl'\]"):
        _run(root, [models[0], models[0]])


def _fake_task(series: Sequence[Series]) -> TaskResult:
    size = series[0].shape
    return TaskResult(
        task="acl",
        plane="axial",
        probability=float(series[0].array.mean()),
        score=0.0,
        threshold=0.5,
        heatmap=np.zeros(size, np.float32),
        relevance=np.zeros(size[0]),
        top_slice=0,
        peak=(0, 0, 0),
        series_index=0,
        series_name=series[0].name,
        series_uid="",
        model_identity="fake",
        completeness_residual=0.0,
    )


def test_prefetch_overlaps_loading_with_compute(tmp_path: Path, models: list[LoadedModel]) -> None:
    """While the models run on study i, study i + 1 is being (or has been) loaded.

    The property, not a time: each compute step waits for the next study's load to have started,
    which happens only if loading runs beside the compute (a serial pipeline would start it after
    the step returns and the wait would time out). The speed-up itself is measured by
    benchmarks/bench_worklist.py (overlapped time / max(load, compute)).
    """
    root = tmp_path / "root"
    for i in range(6):
        write_dicom_study(root / f"s{i}", f"1.2.826.0.1.3680043.8.498.{300 + i}", accession=f"A{i}")
    values = {f"A{i}": i / 10 for i in range(6)}
    load_started = {name: threading.Event() for name in values}
    overlapped: list[bool] = []

    def load(ref: StudyRef) -> list[Series]:
        load_started[ref.name].set()
        return [Series(np.full((3, 4, 4), values[ref.name], np.float32))]

    def compute(series: Sequence[Series], models: Sequence[LoadedModel], device: str) -> Generator:
        yield TriageProgress("acl", "prepare", 0, 1)
        following = f"A{round(float(series[0].array[0, 0, 0]) * 10) + 1}"
        if following in load_started:
            overlapped.append(load_started[following].wait(timeout=10))
        return [_fake_task(series)]

    report = _run(discover_studies(root), models, loader=load, steps=compute, prefetch=2)
    assert overlapped == [True] * 5
    assert [r.study for r in report.results] == [f"A{i}" for i in range(5, -1, -1)]


def test_closing_the_generator_stops_the_loader(root: Path, models: list[LoadedModel]) -> None:
    generator = worklist_steps(root, models, WorklistConfig(device="cpu", prefetch=1))
    for progress in generator:
        if progress.stage == "study":
            break
    generator.close()
    assert "worklist-prefetch" not in {t.name for t in threading.enumerate() if t.is_alive()}


@pytest.mark.parametrize("lanes", [1, 2])
def test_cancel_event_stops_after_the_current_study(
    root: Path, models: list[LoadedModel], lanes: int
) -> None:
    cancel = threading.Event()
    config = WorklistConfig(device="cpu", lanes=lanes)
    generator = worklist_steps(root, models, config, cancel=cancel)
    cancel.set()
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            report: WorklistReport = stop.value
            break
    assert report.cancelled is True
    assert len(report.results) == 1
    assert _alive_workers() == set()


def test_studies_are_read_in_a_loader_process_only_for_several_studies() -> None:
    import functools

    from napari_elnet.io.parallel import LoaderProcess
    from napari_elnet.worklist.batch import _study_loader
    from napari_elnet.worklist.loading import load_study_scan

    with _study_loader(load_study_scan, WorklistConfig(device="cpu"), 5) as load:
        assert load is load_study_scan  # on the CPU the default reads in a thread of this process
    config = WorklistConfig(device="cpu", load_process=True)
    with _study_loader(load_study_scan, config, 1) as load:
        assert load is load_study_scan  # one study (the DICOM node): no process to start
    with _study_loader(load_study_scan, config, 2) as load:
        assert isinstance(load, functools.partial)
        assert isinstance(load.keywords["read"], LoaderProcess)
    with _study_loader(
        load_study_scan, WorklistConfig(device="cpu", load_process=False), 5
    ) as load:
        assert load is load_study_scan
    custom = lambda ref: []  # noqa: E731 - a test's own loader runs as given
    with _study_loader(custom, config, 5) as load:
        assert load is custom


def _alive_workers() -> set[str]:
    """The worklist's threads still running (lanes, loader)."""
    return {t.name for t in threading.enumerate() if t.is_alive() and "worklist-" in t.name}


def _tiny_root(folder: Path, studies: int) -> Path:
    for i in range(studies):
        write_dicom_study(
            folder / f"s{i}", f"1.2.826.0.1.3680043.8.498.{400 + i}", accession=f"B{i}"
        )
    return folder


def test_a_bad_study_on_one_lane_does_not_stop_the_other(
    tmp_path: Path, models: list[LoadedModel]
) -> None:
    """B1 fails to load, and the first study of the second lane fails in the models while the
    first lane is inside a study; every other study is triaged, on both lanes, and the report
    holds every study once."""
    root = _tiny_root(tmp_path / "root", 6)
    inside = threading.Condition()
    busy: dict[str, int] = {}
    studies_on: dict[str, int] = {}

    def loader(ref: StudyRef) -> list[Series]:
        if ref.name == "B1":
            raise OSError("disk gone")
        return load_study_ref(ref)

    def steps(series: Sequence[Series], models: Sequence[LoadedModel], device: str) -> Generator:
        from napari_elnet.inference.triage import triage_steps

        lane = threading.current_thread().name
        with inside:
            busy[lane] = busy.get(lane, 0) + 1
            studies_on[lane] = studies_on.get(lane, 0) + 1
            first_on_lane_1 = lane == "worklist-lane-1" and studies_on[lane] == 1
            inside.notify_all()
        try:
            yield TriageProgress("acl", "prepare", 0, 1)
            if first_on_lane_1:
                with inside:
                    assert inside.wait_for(lambda: busy.get("worklist-lane-0", 0) > 0, 30)
                raise RuntimeError("out of memory")
            return (yield from triage_steps(series, models, device))
        finally:
            with inside:
                busy[lane] -= 1

    out = tmp_path / "report.json"
    report = _run(root, models, report=out, loader=loader, steps=steps, lanes=2)
    statuses = sorted((r.study, r.status, r.reason) for r in report.results)
    errors = [s for s in statuses if s[1] == "error"]
    assert ("B1", "error", "OSError: disk gone") in errors
    assert [e[2] for e in errors if e[0] != "B1"] == ["RuntimeError: out of memory"]
    assert len([s for s in statuses if s[1] == "ok"]) == 4
    assert set(studies_on) == {"worklist-lane-0", "worklist-lane-1"}
    assert sum(studies_on.values()) == 5
    assert sorted(r.study for r in read_report(out)) == [f"B{i}" for i in range(6)]


def test_closing_the_generator_stops_every_lane(tmp_path: Path, models: list[LoadedModel]) -> None:
    """The GUI's stop (its relay closes the generator at the next step): both lanes are inside a
    study, both studies' triage generators are closed, no worklist thread is left, and torch's
    thread count is the caller's again."""
    import torch

    from napari_elnet.common.runs import relay

    root = _tiny_root(tmp_path / "root", 8)
    both_in = threading.Barrier(2, timeout=30)
    opened: list[str] = []
    closed: list[str] = []

    def steps(series: Sequence[Series], models: Sequence[LoadedModel], device: str) -> Generator:
        opened.append(series[0].name)
        try:
            both_in.wait()  # only two concurrent lanes get past this
            while True:  # a study that never ends: only the stop ends it
                yield TriageProgress("acl", "prepare", 0, 1)
        finally:
            closed.append(series[0].name)

    cancel = threading.Event()
    before = torch.get_num_threads()
    config = WorklistConfig(device="cpu", lanes=2)
    run = relay(worklist_steps(root, models, config, steps=steps), cancel)
    tasks = 0
    for progress in run:
        tasks += progress.stage == "task"
        if tasks == 10:
            cancel.set()
    assert len(opened) == 2 and sorted(closed) == sorted(opened)
    assert _alive_workers() == set()
    assert torch.get_num_threads() == before


def test_each_lane_has_its_own_models_and_its_share_of_torch_threads(
    tmp_path: Path, models: list[LoadedModel]
) -> None:
    import torch

    root = _tiny_root(tmp_path / "root", 6)
    seen: dict[str, set[tuple[int, ...]]] = {}
    threads: dict[str, set[int]] = {}
    both_in = threading.Barrier(2, timeout=30)

    def steps(
        series: Sequence[Series], lane_models: Sequence[LoadedModel], device: str
    ) -> Generator:
        from napari_elnet.inference.triage import triage_steps

        name = threading.current_thread().name
        seen.setdefault(name, set()).add(tuple(id(m.model) for m in lane_models))
        threads.setdefault(name, set()).add(torch.get_num_threads())
        both_in.wait()
        return (yield from triage_steps(series, lane_models, device))

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = _run(root, models, steps=steps, lanes=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert [r.status for r in report.results] == ["ok"] * 6
    assert set(seen) == {"worklist-lane-0", "worklist-lane-1"}
    assert all(len(ids) == 1 for ids in seen.values())
    lane0, lane1 = (next(iter(seen[f"worklist-lane-{k}"])) for k in (0, 1))
    assert lane0 == tuple(id(m.model) for m in models)  # the first lane uses the caller's models
    assert set(lane0).isdisjoint(lane1)
    assert threads == {"worklist-lane-0": {1}, "worklist-lane-1": {1}}


def test_lane_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from napari_elnet.common.cpus import usable_cpus
    from napari_elnet.worklist import batch

    assert batch.lane_count(WorklistConfig(device="cpu"), 100) == usable_cpus()
    assert batch.lane_count(WorklistConfig(device="cpu", lanes=3), 100) == 3
    assert batch.lane_count(WorklistConfig(device="cpu", lanes=3), 2) == 2
    assert batch.lane_count(WorklistConfig(device="cpu", lanes=3), 0) == 1
    monkeypatch.setattr(batch, "resolve_device", lambda device: torch.device("cuda"))
    assert batch.lane_count(WorklistConfig(device="cuda"), 100) == 1
    assert batch.lane_count(WorklistConfig(device="cuda", lanes=2), 100) == 2
    with pytest.raises(
        ConfigurationError, match=r"lanes must be >= 1 \(or None: automatic\), got 0"
    ):
        WorklistConfig(lanes=0)
