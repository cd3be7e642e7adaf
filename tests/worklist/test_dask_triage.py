"""Archive triage on a local Dask cluster: the same rows as one process; a killed worker's studies
run elsewhere and every study is in the report once; models load once per worker; resume."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.synthetic_data import single_thread
from support.worklist_factory import make_models

from napari_elnet import cli, phantom
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.steps import run_to_end
from napari_elnet.worklist import WorklistConfig, read_report, run_worklist

pytest.importorskip("distributed")
from napari_elnet.worklist.dask_triage import (
    PLUGIN_NAME,
    dask_worklist_steps,
    parse_address,
)

one_thread = pytest.fixture(single_thread, autouse=True)
N_STUDIES = 12


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 MRNet-layout studies from 2 small phantom knees, each copy with its own noise and gain
    (a phantom costs seconds of CPU; the copies give 12 different studies)."""
    root = tmp_path_factory.mktemp("archive") / "mrnet"
    config = phantom.PhantomConfig(matrix=(64, 64), slices=(8, 10))
    knees = [phantom.generate_study(seed, config) for seed in (1, 2)]
    rng = np.random.default_rng(0)
    for case in range(N_STUDIES):
        knee = knees[case % 2]
        gain = rng.uniform(0.7, 1.0)
        for plane in ("axial", "coronal", "sagittal"):
            volume = phantom.to_mrnet_volume(knee.series[plane]).astype(np.float32) * gain
            volume += rng.normal(0.0, 6.0, volume.shape)
            folder = root / "train" / plane
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{case:04d}.npy", np.clip(volume, 0, 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    folder = tmp_path_factory.mktemp("models")
    return make_models(folder, [("acl", "axial"), ("meniscus", "coronal")], k=1)


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of 2 worker processes for the module (starting one costs seconds)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def _rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as handle:
        return {(r["study"], r["task"]): r for r in csv.DictReader(handle)}


def test_local_cluster_gives_the_rows_of_one_process(
    archive: Path, models: list[Any], tmp_path: Path
) -> None:
    files = [str(m.path) for m in models]
    one = tmp_path / "one.csv"
    run_worklist(archive, models, WorklistConfig(device="cpu", report=one))
    two = tmp_path / "two.csv"
    argv = ["triage", str(archive), "--out", str(two), "--device", "cpu", "--model", *files]
    assert cli.main([*argv, "--dask", "local:2"]) == cli.EXIT_OK

    single, spread = _rows(one), _rows(two)
    assert len(single) == 2 * N_STUDIES
    assert single.keys() == spread.keys()
    for key, row in single.items():
        other = spread[key]
        assert float(other["probability"]) == pytest.approx(float(row["probability"]), abs=1e-6)
        assert other["status"] == row["status"] == "ok"
        assert (other["top_slice"], other["series"]) == (row["top_slice"], row["series"])
    # same ranking (ties in suspicion broken alike)
    assert [r.study for r in read_report(one)] == [r.study for r in read_report(two)]


def test_killed_worker_still_completes_the_report(
    archive: Path, models: list[Any], cluster: Any, tmp_path: Path
) -> None:
    out = tmp_path / "report.csv"
    config = WorklistConfig(device="cpu", report=out)
    seen: dict[str, Any] = {}

    def watch(client: Any) -> None:
        seen["client"] = client

    steps = dask_worklist_steps(
        archive, cluster.scheduler_address, [str(m.path) for m in models], config, on_client=watch
    )
    killed = []

    def kill_busy_worker(progress: Any) -> None:
        if progress.stage != "study" or killed:
            return
        client = seen["client"]
        busy = {w: keys for w, keys in client.processing().items() if keys}
        if not busy:
            killed.append(("", []))
            return
        worker = sorted(busy)[0]
        pid = client.run(os.getpid, workers=[worker])[worker]
        killed.append((worker, list(busy[worker])))
        os.kill(pid, signal.SIGKILL)

    report = run_to_end(steps, kill_busy_worker)
    assert killed and killed[0][1], "no worker was busy when the first result came back"
    studies = [r.study for r in report.results]
    assert sorted(studies) == [f"train/{i:04d}" for i in range(N_STUDIES)]
    assert all(r.status == "ok" for r in report.results)
    rows = _rows(out)
    assert len(rows) == 2 * N_STUDIES  # each study once, both tasks


def test_models_load_once_per_worker_and_resume_skips_reported(
    archive: Path, models: list[Any], cluster: Any, tmp_path: Path
) -> None:
    out = tmp_path / "report.csv"
    files = [str(m.path) for m in models]
    seen: dict[str, Any] = {}

    def loads_at_last_study(progress: Any) -> None:
        if progress.stage == "study" and progress.done == progress.total:
            plugin_loads = seen["client"].run(
                lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].loads
            )
            seen["loads"] = sorted(plugin_loads.values())

    steps = dask_worklist_steps(
        archive,
        cluster.scheduler_address,
        files,
        WorklistConfig(report=out),
        on_client=lambda client: seen.setdefault("client", client),
    )
    first = run_to_end(steps, loads_at_last_study)
    assert len(first.results) == N_STUDIES and first.skipped == 0
    assert seen["loads"] == [1, 1]  # 12 studies on 2 workers, the models loaded once by each
    steps = dask_worklist_steps(
        archive, cluster.scheduler_address, files, WorklistConfig(report=out)
    )
    again = run_to_end(steps)
    assert again.skipped == N_STUDIES and len(again.results) == N_STUDIES


def test_address_forms() -> None:
    assert parse_address("local:3") == (None, 3)
    assert parse_address("tcp://10.0.0.5:8786") == ("tcp://10.0.0.5:8786", 0)
    with pytest.raises(ConfigurationError, match="local:N needs a number of workers >= 1"):
        parse_address("local:0")
