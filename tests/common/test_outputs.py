"""Outputs are never written inside input folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.outputs import ensure_outside_inputs


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
