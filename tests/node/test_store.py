"""The node's store: UID checks keep every file inside it; writes are atomic; partials vanish."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_elnet.node.store import INCOMING, Store, UidError, check_uid

STUDY, SERIES, SOP = "1.2.840.1", "1.2.840.1.2", "1.2.840.1.2.3"


@pytest.mark.parametrize(
    "uid",
    [
        "..",
        "../1.2",
        "1.2/3",
        "1..2",
        ".1.2",
        "1.2.",
        "1.2\\3",
        "",
        "1.2.a",
        "1" * 65,
        "/etc",
        "1.2 3",
    ],
)
def test_crafted_uids_are_refused(tmp_path: Path, uid: str) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(UidError, match="not a valid UID"):
        store.instance_path(STUDY, uid, SOP)
    with pytest.raises(UidError, match="StudyInstanceUID"):
        store.write(uid, SERIES, SOP, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_valid_uids_pass_with_trailing_padding() -> None:
    assert check_uid("1.2.840.10008.5.1.4.1.1.4\x00", "uid") == "1.2.840.10008.5.1.4.1.1.4"
    assert check_uid("1.02.3", "uid") == "1.02.3"  # leading zeros occur in the wild


def test_write_places_the_instance_by_uids(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.write(STUDY, SERIES, SOP, b"DICM-bytes")
    assert path == tmp_path.resolve() / STUDY / SERIES / f"{SOP}.dcm"
    assert path.read_bytes() == b"DICM-bytes"
    assert store.studies() == [STUDY]
    assert store.instances(STUDY) == [path]
    assert store.study_bytes(STUDY) == len(b"DICM-bytes")
    assert list((tmp_path / INCOMING).iterdir()) == []


def test_partial_files_of_a_killed_run_are_removed_on_open(tmp_path: Path) -> None:
    Store(tmp_path)
    partial = tmp_path / INCOMING / "rx-123.part"
    partial.write_bytes(b"half an instance")
    store = Store(tmp_path)
    assert not partial.exists()
    assert store.studies() == []


def test_hidden_and_non_uid_folders_are_not_studies(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write(STUDY, SERIES, SOP, b"x")
    (tmp_path / ".results" / STUDY).mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "1.2.3").mkdir()  # empty study folder
    assert store.studies() == [STUDY]
