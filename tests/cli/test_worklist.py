"""``napari-elnet triage``: in-process end to end with a ranked table, report, exit codes, PHI, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.synthetic_data import single_thread
from support.worklist_factory import PATIENT_NAME, make_models, write_dicom_study

from napari_elnet import cli

one_thread = pytest.fixture(single_thread, autouse=True)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("models")
    models = make_models(folder, [("acl", "axial"), ("meniscus", "coronal")])
    return [str(m.path) for m in models]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    for i in range(3):
        write_dicom_study(
            folder / f"patient{i}",
            f"1.2.826.0.1.3680043.8.498.{400 + i}",
            planes=("axial", "coronal"),
            accession=f"ACC{i}",
        )
    (folder / "patient0" / "junk.dcm").write_bytes(b"not dicom at all")
    return folder


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_triage_ranks_studies_and_writes_the_csv_report(
    root: Path, model_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _listing(root)
    out = tmp_path / "reports" / "worklist.csv"
    argv = ["triage", str(root), "--out", str(out), "--device", "cpu", "--model", *model_files]
    assert cli.main(argv) == cli.EXIT_OK
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["#", "study", "suspicion", "acl", "meniscus", "group", "status"]
    assert [line.split()[1] for line in lines[1:4]] == [
        row["study"] for row in csv.DictReader(out.open()) if row["task"] == "acl"
    ]
    assert "3 of 3 studies shown; 0 could not be triaged" in lines[4]
    assert "studies/min" in captured.err and "ETA" in captured.err
    assert "warning: skipped patient0/junk.dcm" in captured.err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6  # 3 studies x 2 tasks
    assert {r["task"] for r in rows} == {"acl", "meniscus"}
    assert [float(r["suspicion"]) for r in rows] == sorted(
        (float(r["suspicion"]) for r in rows), reverse=True
    )
    assert "patient_name" not in rows[0] and PATIENT_NAME not in out.read_text()
    assert _listing(root) == before

    assert cli.main(argv) == cli.EXIT_OK  # resume: nothing left to do
    assert "3 already in the report" in capsys.readouterr().out


def test_triage_json_with_phi(
    root: Path, model_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "worklist.json"
    argv = ["triage", str(root), "--out", str(out), "--device", "cpu", "--include-phi"]
    assert cli.main([*argv, "--model", model_files[0], "--prefetch", "1"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert "patient name" in table and PATIENT_NAME in table
    data = json.loads(out.read_text())
    assert data["format"] == "napari-elnet-worklist"
    assert "max over tasks" in data["suspicion"]
    assert [s["rank"] for s in data["studies"]] == [1, 2, 3]
    assert {s["patient_name"] for s in data["studies"]} == {PATIENT_NAME}
    assert data["studies"][0]["tasks"][0]["task"] == "acl"


@pytest.mark.parametrize(
    ("out_of", "message"),
    [
        (lambda root, tmp: root / "report.csv", "inside the input folder"),
        (lambda root, tmp: tmp / "report.txt", "suffix must be one of"),
    ],
)
def test_triage_refuses_bad_outputs_with_exit_2(
    root: Path,
    model_files: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    out_of: object,
    message: str,
) -> None:
    before = _listing(root)
    out = out_of(root, tmp_path)  # type: ignore[operator]
    argv = ["triage", str(root), "--out", str(out), "--model", *model_files]
    assert cli.main(argv) == cli.EXIT_UNUSABLE
    assert message in capsys.readouterr().err
    assert _listing(root) == before


def test_triage_warns_of_each_file_of_a_study_it_could_not_load(
    root: Path, model_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted((root / "patient1").glob("*.dcm"))[0]
    (root / "patient1" / "zz_trunc.dcm").write_bytes(first.read_bytes()[:-1000])
    out = tmp_path / "worklist.csv"
    argv = ["triage", str(root), "--out", str(out), "--device", "cpu", "--model", *model_files]
    assert cli.main(argv) == cli.EXIT_OK
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "zz_trunc.dcm" in line]
    assert lines == [
        "warning: ACC1: zz_trunc.dcm: pixel data cannot be decoded: " + lines[0].split(": ", 4)[-1]
    ]
    assert "patient1" not in lines[0]  # the display name, not the folder (PHI)
    rows = list(csv.DictReader(out.open()))
    assert all(r["status"] == "ok" for r in rows)
    damaged = [r for r in rows if r["study"] == "ACC1"]
    assert len(damaged) == 2 and all("zz_trunc.dcm: pixel data" in r["warnings"] for r in damaged)
    assert not any("zz_trunc" in r["warnings"] for r in rows if r["study"] != "ACC1")


@pytest.mark.parametrize("top", ["0", "-1"])
def test_triage_refuses_top_below_1_with_exit_2(
    root: Path, model_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], top: str
) -> None:
    out = tmp_path / "worklist.csv"
    argv = ["triage", str(root), "--out", str(out), "--model", *model_files, "--top", top]
    assert cli.main(argv) == cli.EXIT_UNUSABLE
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"napari-elnet: top must be >= 1, got {top}"]
    assert captured.out == "" and not out.exists()


def test_triage_on_two_lanes_ranks_as_on_one(
    root: Path, model_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = {}
    for lanes in ("1", "2"):
        out = tmp_path / f"lanes{lanes}.csv"
        argv = ["triage", str(root), "--out", str(out), "--device", "cpu", "--lanes", lanes]
        assert cli.main([*argv, "--model", *model_files]) == cli.EXIT_OK
        assert "3 of 3 studies shown; 0 could not be triaged" in capsys.readouterr().out
        reports[lanes] = list(csv.DictReader(out.open()))
    assert len(reports["1"]) == 6  # 3 studies x 2 tasks
    # one torch thread per study either way (single_thread): the same probabilities, bit for bit
    assert reports["2"] == reports["1"]


def test_triage_of_an_empty_folder_is_exit_2(
    tmp_path: Path, model_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = ["triage", str(tmp_path / "empty"), "--out", str(tmp_path / "r.csv")]
    assert cli.main([*argv, "--model", *model_files]) == cli.EXIT_UNUSABLE
    assert "no DICOM or .npy studies found" in capsys.readouterr().err


def test_other_subcommands_are_still_there() -> None:
    parser = cli.build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"info", "predict", "triage", "train", "evaluate", "phantom"} <= set(choices)
