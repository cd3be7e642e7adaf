"""Atomic writes: the target holds the old or the new content, never a part; no temporary left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from napari_elnet.common.atomic import write_atomic, write_text_atomic


def test_bytes_and_text_replace_the_target_and_leave_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    assert write_atomic(target, b"\x00new\xff") == target
    assert target.read_bytes() == b"\x00new\xff"
    write_text_atomic(target, "a\r\nb é\n")
    assert target.read_bytes() == "a\r\nb é\n".encode()  # no newline translation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_the_file_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    target = write_atomic(tmp_path / "atomic", b"x")
    assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_a_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "x", b"x")
    assert not (tmp_path / "missing").exists()
