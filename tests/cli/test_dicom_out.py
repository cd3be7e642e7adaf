"""``predict --dicom-out`` and ``triage --dicom-out`` end to end, in process, on a phantom DICOM study."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from support.dicom_factory import write_stack
from support.dicom_results import dciodvfy, write_small_phantom

from napari_elnet.cli import EXIT_OK, EXIT_UNUSABLE, main
from napari_elnet.models.model_file import ModelInfo, build_model, save_model


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root folder with one phantom DICOM study in ``case_a/``."""
    folder = tmp_path_factory.mktemp("studies")
    write_small_phantom(folder / "case_a")
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small axial ACL model file (randomly initialised: only the objects are under test)."""
    info = ModelInfo(task="acl", plane="axial", k=1, summary="randomly initialized")
    return save_model(tmp_path_factory.mktemp("models") / "acl.pt", build_model(info), info)


def test_predict_writes_report_map_and_key_image(root: Path, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "dicom"
    code = main(["predict", str(root / "case_a"), "--model", str(model), "--dicom-out", str(out)])
    assert code == EXIT_OK
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ELNET_KEY_acl.dcm", "ELNET_MAP_acl.dcm", "ELNET_SR.dcm"]
    for name in names:
        assert dciodvfy(out / name)[0] == []


def test_predict_refuses_mrnet_npy_before_triage(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npy = tmp_path / "axial" / "0001.npy"
    npy.parent.mkdir()
    np.save(npy, np.zeros((5, 256, 256), dtype=np.uint8))
    out = tmp_path / "dicom"
    code = main(["predict", str(npy), "--model", str(model), "--dicom-out", str(out)])
    assert code == EXIT_UNUSABLE
    assert "MRNet .npy input has no DICOM source" in capsys.readouterr().err
    assert not out.exists()


def test_predict_refuses_an_output_inside_the_study(root: Path, model: Path) -> None:
    inside = root / "case_a" / "results"
    code = main(
        ["predict", str(root / "case_a"), "--model", str(model), "--dicom-out", str(inside)]
    )
    assert code == EXIT_UNUSABLE
    assert not inside.exists()


def test_triage_writes_one_folder_per_study_named_by_its_report_id(
    root: Path, model: Path, tmp_path: Path
) -> None:
    report, out = tmp_path / "report.csv", tmp_path / "dicom"
    args = ["triage", str(root), "--out", str(report), "--model", str(model)]
    assert main([*args, "--dicom-out", str(out)]) == EXIT_OK
    with report.open() as handle:
        (row,) = list(csv.DictReader(handle))
    (folder,) = out.iterdir()
    assert folder.name == row["study_id"]
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["ELNET_KEY_acl.dcm", "ELNET_MAP_acl.dcm", "ELNET_SR.dcm"]
    source = next((root / "case_a").rglob("*.dcm"))
    study_uid = pydicom.dcmread(source, stop_before_pixels=True).StudyInstanceUID
    assert pydicom.dcmread(folder / "ELNET_SR.dcm").StudyInstanceUID == study_uid


def test_triage_keeps_a_study_whose_dicom_results_fail_and_warns(
    root: Path,
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import napari_elnet.dicom.results

    def refuse(*args: object, **kwargs: object) -> None:  # as highdicom refusing a value
        raise ValueError("Value of attribute 'PatientAge' is not valid\nsecond line")

    monkeypatch.setattr(napari_elnet.dicom.results, "write_dicom_results", refuse)
    report, out = tmp_path / "report.csv", tmp_path / "dicom"
    args = ["triage", str(root), "--out", str(report), "--model", str(model), "--device", "cpu"]
    assert main([*args, "--dicom-out", str(out)]) == EXIT_OK
    with report.open() as handle:
        (row,) = list(csv.DictReader(handle))
    problem = "DICOM results: ValueError: Value of attribute 'PatientAge' is not valid"
    assert row["status"] == "ok" and row["task"] == "acl" and row["probability"] != ""
    assert problem in row["warnings"] and "second line" not in row["warnings"]
    err = capsys.readouterr().err
    assert f"warning: {row['study_id']}: {problem}" in err.splitlines()
    assert not out.exists() or not any(out.iterdir())


def test_predict_on_the_real_knee_writes_valid_objects(knee_dir: Path, tmp_path: Path) -> None:
    """The real sagittal DESS knee with a sagittal model file (random weights: objects only)."""
    info = ModelInfo(task="acl", plane="sagittal", k=1, summary="randomly initialized")
    model = save_model(tmp_path / "acl_sagittal.pt", build_model(info), info)
    out = tmp_path / "dicom"
    assert main(["predict", str(knee_dir), "--model", str(model), "--dicom-out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ELNET_KEY_acl.dcm", "ELNET_MAP_acl.dcm", "ELNET_SR.dcm"]
    source = pydicom.dcmread(next(knee_dir.glob("*.dcm")), stop_before_pixels=True)
    for name in names:
        assert dciodvfy(out / name)[0] == [], name
        written = pydicom.dcmread(out / name, stop_before_pixels=True)
        assert written.StudyInstanceUID == source.StudyInstanceUID


def test_predict_on_a_real_file_with_acr_nema_study_time(
    encodings_dir: Path, model: Path, tmp_path: Path
) -> None:
    """implicit_little.dcm has StudyTime '09:11:56' and StudyDate '1996.06.11' (ACR-NEMA formats):
    predict --dicom-out died with highdicom's ValueError traceback, triage marked the study an error."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(encodings_dir / "implicit_little.dcm", study)
    out = tmp_path / "dicom"
    argv = ["predict", str(study), "--model", str(model), "--series", "acl=0", "--dicom-out"]
    assert main([*argv, str(out)]) == EXIT_OK
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ELNET_KEY_acl.dcm", "ELNET_MAP_acl.dcm", "ELNET_SR.dcm"]
    for name in names:
        written = pydicom.dcmread(out / name, stop_before_pixels=True)
        assert (written.StudyDate, written.StudyTime) == ("19960611", "091156")


def test_warnings_are_one_line_each(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warning raised after loading (here: a StudyTime that is no time) is ``warning: ...``
    on one line, without Python's source file, line number and source line."""
    study = tmp_path / "study"
    frame = pydicom.uid.generate_uid()
    for path in write_stack(study, 3, size=(32, 32)):
        ds = pydicom.dcmread(path)
        ds.StudyTime = "noon"
        ds.FrameOfReferenceUID = frame
        ds.save_as(path)
    out = tmp_path / "dicom"
    code = main(["predict", str(study), "--model", str(model), "--dicom-out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_OK
    assert any("StudyTime 'noon'" in line for line in err), err
    assert all(line.startswith(("warning: ", "wrote ")) for line in err), err
