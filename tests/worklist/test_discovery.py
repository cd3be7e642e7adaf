"""Study discovery: grouping by StudyInstanceUID across folders, MRNet cases, problems, names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.worklist_factory import PATIENT_ID, PATIENT_NAME, write_dicom_slice, write_dicom_study

from napari_elnet.common.errors import NoUsableSeriesError
from napari_elnet.worklist import discover_studies, load_study_ref, read_study_ref
from napari_elnet.worklist.discovery import uid_hash

UID_A = "1.2.826.0.1.3680043.8.498.101"
UID_B = "1.2.826.0.1.3680043.8.498.102"


def test_study_spanning_two_folders_is_one_study(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "export1" / "ax", UID_A, planes=("axial",), accession="ACC1")
    write_dicom_study(tmp_path / "export2" / "cor", UID_A, planes=("coronal",))
    found = discover_studies(tmp_path)
    assert len(found.studies) == 1
    study = found.studies[0]
    assert study.folders == ("export1/ax", "export2/cor")
    assert len(study.files) == 6
    assert study.name == "ACC1"
    assert study.study_uid == UID_A
    series = load_study_ref(study)
    assert sorted(s.plane for s in series) == ["axial", "coronal"]


def test_folder_holding_two_studies_gives_two(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "mixed", UID_A, accession="ACC1", prefix="a")
    write_dicom_study(tmp_path / "mixed", UID_B, accession="ACC2", prefix="b")
    found = discover_studies(tmp_path)
    assert [s.name for s in found.studies] == ["ACC1", "ACC2"]
    assert [len(s.files) for s in found.studies] == [3, 3]
    assert {f.name[0] for f in found.studies[0].files} == {"a"}
    assert found.problems == ()


def test_mrnet_root_gives_one_study_per_case_with_three_planes(tmp_path: Path) -> None:
    for split, cases in (("train", ("0000", "0001")), ("valid", ("1130",))):
        for plane in ("axial", "coronal", "sagittal"):
            (tmp_path / split / plane).mkdir(parents=True)
            for case in cases:
                np.save(tmp_path / split / plane / f"{case}.npy", np.zeros((4, 16, 16), np.uint8))
    (tmp_path / "train-acl.csv").write_text("0000,1\n0001,0\n")
    found = discover_studies(tmp_path)
    assert [s.name for s in found.studies] == ["train/0000", "train/0001", "valid/1130"]
    assert found.studies[0].study_id == "npy-train/0000"
    first = found.studies[0]
    assert first.kind == "npy"
    assert [p.parent.name for p in first.files] == ["axial", "coronal", "sagittal"]
    series = load_study_ref(first)
    assert sorted(s.plane for s in series) == ["axial", "coronal", "sagittal"]


def test_unreadable_file_is_listed_with_its_reason(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "good", UID_A)
    bad = tmp_path / "good" / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    found = discover_studies(tmp_path)
    assert len(found.studies) == 1
    assert [p.path for p in found.problems] == [bad]
    assert found.problems[0].reason.startswith("not a DICOM image header")


def test_name_is_a_uid_hash_without_accession_and_never_patient_data(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "Doe_Jane", UID_A)
    study = discover_studies(tmp_path).studies[0]
    assert study.name == f"uid-{uid_hash(UID_A)[:10]}"
    assert study.study_id == f"dicom-{uid_hash(UID_A)}"
    for text in (study.name, study.study_id):
        assert PATIENT_NAME not in text and PATIENT_ID not in text and UID_A not in text
    assert (study.phi.patient_name, study.phi.patient_id) == (PATIENT_NAME, PATIENT_ID)


def test_files_without_study_uid_are_grouped_by_folder(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "x", None)
    write_dicom_study(tmp_path / "y", None)
    found = discover_studies(tmp_path)
    assert len(found.studies) == 2
    assert sorted(s.folders for s in found.studies) == [("x",), ("y",)]


def test_order_and_ids_are_stable(tmp_path: Path) -> None:
    write_dicom_study(tmp_path / "b", UID_B, accession="B")
    write_dicom_study(tmp_path / "a", UID_A, accession="A")
    first = discover_studies(tmp_path)
    second = discover_studies(tmp_path)
    assert [s.name for s in first.studies] == ["A", "B"]
    assert first == second


def test_study_whose_files_all_fail_names_the_study(tmp_path: Path) -> None:
    path = write_dicom_slice(
        tmp_path / "s" / "one.dcm", study_uid=UID_A, series_uid="1.2.3", accession="ACC9"
    )
    study = discover_studies(tmp_path).studies[0]
    path.write_bytes(path.read_bytes()[:-100])  # truncate the pixel data after discovery
    assert read_study_ref(study).series == ()
    with pytest.raises(NoUsableSeriesError, match="study ACC9: no usable image series"):
        load_study_ref(study)


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NoUsableSeriesError, match="not a folder"):
        discover_studies(tmp_path / "missing")
