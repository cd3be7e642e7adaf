"""Reviewed marks: remembered across instances, keyed without patient data, damaged files kept aside."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from napari_elnet.worklist import StudyRef
from napari_elnet.worklist.reviewed import (
    DATA_DIR_VARIABLE,
    FILE_NAME,
    FORMAT,
    ReviewedMarks,
    default_data_dir,
    mark_key,
)


def test_a_mark_is_remembered_by_a_new_instance_and_can_be_removed(tmp_path: Path) -> None:
    marks = ReviewedMarks(tmp_path / "data")
    assert len(marks) == 0 and not (tmp_path / "data").exists()  # nothing written until a mark
    marks.set("dicom-0123456789abcdef", True)
    data = json.loads((tmp_path / "data" / FILE_NAME).read_text())
    assert data["format"] == FORMAT and list(data["reviewed"]) == ["dicom-0123456789abcdef"]
    assert "dicom-0123456789abcdef" in ReviewedMarks(tmp_path / "data")
    marks.set("dicom-0123456789abcdef", False)
    assert ReviewedMarks(tmp_path / "data").keys() == set()


def test_two_instances_do_not_undo_each_others_marks(tmp_path: Path) -> None:
    first, second = ReviewedMarks(tmp_path), ReviewedMarks(tmp_path)
    first.set("a", True)
    second.set("b", True)  # second never read "a", yet keeps it
    assert ReviewedMarks(tmp_path).keys() == {"a", "b"}
    first.reload()
    assert first.keys() == {"a", "b"}


def test_a_damaged_file_is_moved_aside_not_overwritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        marks = ReviewedMarks(tmp_path)
    assert len(marks) == 0
    assert (tmp_path / f"{FILE_NAME}.bad").read_text() == "{not json"
    assert "cannot be read" in caplog.text
    marks.set("a", True)
    assert ReviewedMarks(tmp_path).keys() == {"a"}


def test_the_data_folder_follows_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    assert ReviewedMarks().path == tmp_path / "elsewhere" / FILE_NAME
    monkeypatch.delenv(DATA_DIR_VARIABLE)
    assert default_data_dir().name == "napari-elnet"


def test_keys_hold_no_patient_data_and_npy_keys_depend_on_the_root(tmp_path: Path) -> None:
    dicom = StudyRef("dicom-0123456789abcdef", "ACC1", "dicom", ())
    assert mark_key(dicom, tmp_path / "a") == mark_key(dicom, tmp_path / "b") == dicom.study_id
    npy = StudyRef("npy-train/0001", "train/0001", "npy", ())
    first, second = mark_key(npy, tmp_path / "a"), mark_key(npy, tmp_path / "b")
    assert first.startswith("npy-train/0001@") and first != second
    assert str(tmp_path) not in first
