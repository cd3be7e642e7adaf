"""``pull``: C-FIND (study root) and C-GET of a study stored in a real Orthanc, then triage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dicom_peers import Orthanc, clone_study, free_port, start_orthanc

from napari_elnet.cli import main
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.config import NodeConfig, Peer
from napari_elnet.node.pull import QueryError, StudyQuery, find_studies, retrieve_study
from napari_elnet.node.stability import study_id_of
from napari_elnet.node.store import Store
from napari_elnet.worklist.report import read_report


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    # Orthanc answers C-FIND and C-GET only from the AE titles it knows
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc-pull"), {"elnet": ("ELNET", free_port())}
    )
    yield server
    server.stop()


def peer(orthanc: Orthanc) -> Peer:
    return Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port)


def test_find_and_get_one_study(
    orthanc: Orthanc, tmp_path: Path, phantom_files: list[Path]
) -> None:
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-FIND")
    _, other = clone_study(phantom_files[:2], tmp_path / "other", "ACC-OTHER")
    orthanc.upload(files)
    orthanc.upload(other)
    found = find_studies(peer(orthanc), StudyQuery(accession="ACC-FIND"))
    assert [s.study_uid for s in found] == [study_uid]
    assert found[0].instances == len(files)
    assert found[0].modalities == "MR"
    store = Store(tmp_path / "store")
    got = retrieve_study(peer(orthanc), study_uid, NodeConfig(store=store.root), store)
    assert (got.completed, got.failed) == (len(files), 0)
    assert store.studies() == [study_uid]
    assert len(store.instances(study_uid)) == len(files)


def test_get_of_an_unknown_peer_fails_with_a_message(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(QueryError, match="not accepted"):
        retrieve_study(Peer("NOBODY", "127.0.0.1", 9), "1.2.3", NodeConfig(store=store.root), store)


def test_pull_command_retrieves_and_triages(
    orthanc: Orthanc,
    tmp_path: Path,
    phantom_files: list[Path],
    tiny_models: list[LoadedModel],
    capsys: pytest.CaptureFixture[str],
) -> None:
    study_uid, files = clone_study(phantom_files, tmp_path / "src", "ACC-PULL")
    orthanc.upload(files)
    store = tmp_path / "store"
    argv = [
        "pull", "--from", f"ORTHANC@127.0.0.1:{orthanc.dicom_port}", "--accession", "ACC-PULL",
        "--store", str(store), "--device", "cpu", "--no-dicom-results",
        "--model", *(str(m.path) for m in tiny_models),
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ACC-PULL" in out
    (result,) = read_report(store / "worklist.csv")
    assert result.study_id == study_id_of(study_uid)
    assert result.status == "ok"
    assert len(list((store / study_uid).rglob("*.dcm"))) == len(files)
    # a second pull finds the study in the report and does not triage it again
    assert main(argv) == 0
    assert "already in the report" in capsys.readouterr().out
    assert len(read_report(store / "worklist.csv")) == 1
