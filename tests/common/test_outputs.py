"""Outputs are never written inside input folders, and are refused up front where they cannot be
written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.outputs import ensure_outside_inputs, ensure_writable


def test_inside_input_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "study"
    data.mkdir()
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        ensure_outside_inputs(data / "sub" / "report.json", [data])


def test_next_to_an_input_file_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "image.dcm"
    image.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        ensure_outside_inputs(tmp_path / "report.json", [image])


def test_elsewhere_is_allowed(tmp_path: Path) -> None:
    data = tmp_path / "study"
    data.mkdir()
    assert (
        ensure_outside_inputs(tmp_path / "out" / "r.json", [data])
        == (tmp_path / "out" / "r.json").resolve()
    )


def test_a_file_on_the_way_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    (tmp_path / "study").mkdir()
    with pytest.raises(ConfigurationError, match=r"notes\.txt is a file, not a folder"):
        ensure_outside_inputs(blocker / "out" / "r.json", [tmp_path / "study"])


def test_the_kind_of_an_existing_output_is_checked(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigurationError, match="it is a file, not a folder"):
        ensure_writable(afile, folder=True)
    with pytest.raises(ConfigurationError, match="it is a folder, not a file"):
        ensure_writable(tmp_path, folder=False)
    assert ensure_writable(afile, folder=False) == afile.resolve()
    assert ensure_writable(tmp_path, folder=True) == tmp_path.resolve()
    assert (
        ensure_writable(tmp_path / "new" / "deeper", folder=True)
        == (tmp_path / "new" / "deeper").resolve()
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write in read-only folders"
)
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigurationError, match="no permission to write in"):
            ensure_writable(locked / "sub" / "r.json")
    finally:
        locked.chmod(0o755)


def test_a_read_only_folder_is_refused_by_its_access_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check where the tests run as root (who may write anywhere): os.access says no."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (tmp_path / "study").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    with pytest.raises(ConfigurationError, match=f"no permission to write in {locked}"):
        ensure_outside_inputs(locked / "r.json", [tmp_path / "study"])
