"""Why a DICOM file did not load, as the user reads it (``io.dicom_headers``)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from napari_elnet.io.study import read_study


def _undecodable(name: str) -> Path:
    """A pydicom test file whose pixel data no installed decoder reads (skipped if one does)."""
    path = Path(get_testdata_file(name))
    try:
        _ = pydicom.dcmread(path).pixel_array
    except Exception:
        return path
    pytest.skip(f"{name} decodes with the decoders installed here")


@pytest.mark.parametrize(
    "name", ["JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"]
)  # 12-bit JPEG Extended; a JPEG 2000 codestream whose size disagrees with its header
def test_an_undecodable_file_gives_each_decoders_reason(name: str) -> None:
    """pydicom's message is a header line ending in ':' and one line per decoder: the reasons
    are on those lines, and the problem once stopped at the header line."""
    (problem,) = read_study(_undecodable(name)).problems
    assert problem.reason.startswith("pixel data cannot be decoded (")
    assert "\n" not in problem.reason
    assert not problem.reason.endswith(":")
    assert "plugins: " in problem.reason and "pillow: " in problem.reason
