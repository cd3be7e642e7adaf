"""The napari reader: a cheap path check that never raises, and per-file warnings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from napari_elnet.common.errors import ElnetWarning
from napari_elnet.plugin.reader import get_reader, read_study_layers


def test_declines_other_files_and_never_raises(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert get_reader(str(text)) is None
    assert get_reader(str(tmp_path / "missing.png")) is None
    assert get_reader([]) is None
    assert get_reader(str(tmp_path)) is read_study_layers


def test_reads_npy_and_warns_about_a_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "coronal"
    folder.mkdir()
    np.save(folder / "0001.npy", np.zeros((3, 16, 16), np.uint8) + 7)
    (folder / "0002.dcm").write_bytes(b"not dicom at all")
    with pytest.warns(ElnetWarning, match=r"0002\.dcm"):
        layers = read_study_layers(str(folder))
    ((data, kwargs, kind),) = layers
    assert kind == "image" and data.shape == (3, 16, 16)
    assert kwargs["name"].endswith("(coronal)")


def test_folder_without_images_warns_and_gives_no_layers(tmp_path: Path) -> None:
    with pytest.warns(ElnetWarning, match="no usable image series"):
        assert read_study_layers(str(tmp_path)) == []


def test_real_knee_layer(knee_dir: Path) -> None:
    ((data, kwargs, _),) = read_study_layers(str(knee_dir))
    assert data.shape == (20, 512, 512)
    np.testing.assert_allclose(kwargs["scale"], (1.5, 0.3125, 0.3125), rtol=1e-3)
    low, high = kwargs["contrast_limits"]
    assert high > low
    assert len(kwargs["metadata"]["napari_elnet"]["files"]) == 20


def test_phantom_study_layers(phantom_dir: Path) -> None:
    """The generated phantom knee written as DICOM (a clean clone's version of the test above)."""
    layers = read_study_layers(str(phantom_dir))
    entries = [kwargs["metadata"]["napari_elnet"] for _, kwargs, _ in layers]
    assert sorted(entry["plane"] for entry in entries) == ["axial", "coronal", "sagittal"]
    for (data, kwargs, kind), entry in zip(layers, entries, strict=True):
        assert kind == "image" and data.shape == (16, 128, 128)
        assert all(s > 0 for s in kwargs["scale"])
        low, high = kwargs["contrast_limits"]
        assert high > low
        assert len(entry["files"]) == 16
        assert all(phantom_dir in Path(f).parents for f in entry["files"])


def test_a_path_with_nothing_to_read_says_why(tmp_path: Path) -> None:
    """The warning once stopped at "no usable image series" where nothing was named above it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(
        ElnetWarning, match=r"no usable image series \(no DICOM or \.npy image files"
    ):
        assert read_study_layers(str(empty)) == []
    plan = tmp_path / "plan"
    plan.mkdir()
    shutil.copy(get_testdata_file("rtplan.dcm"), plan / "plan.dcm")
    with pytest.warns(ElnetWarning, match=r"\(no image series; 1 DICOM file\(s\) hold none"):
        assert read_study_layers(str(plan)) == []
