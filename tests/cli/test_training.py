"""``napari-elnet train``, ``evaluate`` and ``phantom`` end to end, in process."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import types
from pathlib import Path

import pytest
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.cli import main
from napari_elnet.models.model_file import load_model

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)
TINY = ["--task", "acl", "--k", "1", "--lr", "1e-3", "--device", "cpu", "--epochs", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0], "valid": [0, 1, 1, 0]}, slices=2, size=32)


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("models") / "acl.pt"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", str(data), *TINY, "--out", str(out)])
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


def test_train_writes_model_and_reports(trained: tuple[Path, str, str], data: Path) -> None:
    out, stdout, stderr = trained
    info = load_model(out).info
    assert (info.task, info.plane, info.norm, info.k) == ("acl", "axial", "layer", 1)
    assert info.provenance["split"]["valid"] == 4  # MRNet: validated on its valid split
    assert info.provenance["data"] == str(data)
    assert "training on mrnet train acl/axial: 5 cases" in stderr
    assert "epoch 2/2 validate [########################] 4/4" in stderr
    assert "\r" in stderr
    assert stdout.splitlines()[0].split() == [
        "best",
        "epoch",
        "accuracy",
        "sensitivity",
        "specificity",
        "ROC-AUC",
        "MCC",
    ]
    assert f"model: {out}" in stdout


def test_evaluate_table_and_json(
    trained: tuple[Path, str, str], data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = trained[0]
    json_path = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                str(data),
                "--model",
                str(out),
                "--device",
                "cpu",
                "--json",
                str(json_path),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "task",
        "accuracy",
        "sensitivity",
        "specificity",
        "ROC-AUC",
        "MCC",
        "n",
    ]
    assert table[1].split()[0] == "acl" and table[1].split()[-1] == "4"
    record = json.loads(json_path.read_text())
    assert list(record) == ["acl"]
    assert set(record["acl"]) == {"accuracy", "sensitivity", "specificity", "roc_auc", "mcc", "n"}
    assert record["acl"]["n"] == 4
    assert main(["evaluate", str(data), "--model", str(out), "--device", "cpu", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == record


def test_folds_report_mean_and_sd(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cv.pt"
    args = ["train", str(data), *TINY[:-1], "1", "--folds", "2", "--out", str(out)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "mean±sd"]
    assert load_model(tmp_path / "cv.fold2.pt").info.provenance["fold"] == 1


def test_refuses_output_inside_data_folder(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in data.rglob("*"))
    assert main(["train", str(data), *TINY, "--out", str(data / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-elnet: refusing to write") and err.count("\n") == 1
    assert sorted(p.name for p in data.rglob("*")) == before


def test_an_unwritable_output_is_refused_before_training(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """train/evaluate/phantom: a file where a folder is needed, exit 2 before any work, one line."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    runs = (
        ["train", str(data), *TINY, "--out", str(blocker / "m.pt")],
        ["evaluate", str(data), "--model", str(tmp_path / "none.pt"), "--json", str(blocker / "e")],
        ["phantom", str(blocker), "--n", "1"],
    )
    for argv in runs:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"napari-elnet: cannot write {blocker}") and err.count("\n") == 1
        assert "is a file, not a folder" in err
    assert blocker.read_text() == "x"


def test_unusable_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path), *TINY, "--out", str(tmp_path.parent / "x.pt")]) == 2
    assert "unknown data set layout" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--model", str(tmp_path / "none.pt")]) == 2
    assert "cannot read model file" in capsys.readouterr().err


def test_phantom_is_wired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def main_phantom(out: Path, n: int, fmt: str, seed: int) -> Path:
        calls.append((out, n, fmt, seed))
        return out

    monkeypatch.setitem(
        sys.modules, "napari_elnet.phantom", types.SimpleNamespace(main_phantom=main_phantom)
    )
    assert (
        main(["phantom", str(tmp_path / "ph"), "--n", "6", "--format", "dicom", "--seed", "3"]) == 0
    )
    assert calls == [(tmp_path / "ph", 6, "dicom", 3)]
    assert "wrote 6 phantom cases (dicom)" in capsys.readouterr().out


def test_phantom_dicom_data_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["phantom", str(tmp_path / "ph"), "--n", "8", "--format", "dicom", "--seed", "1"]) == 0
    )
    root = next(p.parent for p in (tmp_path / "ph").rglob("labels.csv"))
    out = tmp_path / "models" / "acl.pt"
    args = ["train", str(root), *TINY[:-1], "1", "--val-fraction", "0.34", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    assert load_model(out).info.provenance["layout"] == "dicom"


def test_train_defaults_follow_the_task_table_and_the_layout() -> None:
    from napari_elnet.cli import build_parser
    from napari_elnet.cli.training import train_config

    args = build_parser().parse_args(["train", "DATA", "--task", "meniscus", "--out", "m.pt"])
    assert (train_config(args, "mrnet").plane, train_config(args, "mrnet").norm) == (
        "coronal",
        "contrast",
    )
    assert train_config(args, "kneemri").plane == "sagittal"
    args = build_parser().parse_args(["train", "DATA", "--plane", "axial", "--out", "m.pt"])
    assert train_config(args, "kneemri").plane == "axial"  # an explicit choice wins
