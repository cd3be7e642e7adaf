"""Real scanner data (../shared/data, skipped when absent) and pydicom's own MR test files.

Invariants, one test each:

1. The knee folder is exactly one sagittal series of 20 slices of 512x512, positions strictly increasing
   along the normal, slice spacing 1.5 mm (every header gap), in-plane 0.3125 mm, a window.
2. The brain folder is one axial series of 20 slices of 256x256 despite its oblique orientation, with the
   median header gap as spacing, no window (its WindowWidth is 0), and no irregular-spacing warning.
3. Every file in encodings/ loads or yields a FileProblem for that file; the compressed ones decode to
   finite, non-constant arrays.
4. pydicom's MR_small in lossless encodings loads to the same values as the uncompressed file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from napari_elnet.common.series import Series
from napari_elnet.io import read_study

COMPRESSED = ("jpeg_2000", "jpeg_baseline_8bit", "jpeg_lossless_sel1", "jpeg_ls", "rle")


def _header_locations(series: Series) -> np.ndarray:
    """Positions of the series' files projected on its normal, read independently with pydicom."""
    assert series.orientation is not None
    positions = [
        pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient for f in series.files
    ]
    return np.array(positions, dtype=np.float64) @ series.orientation[2]


def test_knee_folder_is_one_sagittal_series(knee_dir: Path) -> None:
    scan = read_study(knee_dir)

    (series,) = scan.series
    assert scan.problems == ()
    assert (series.shape, series.plane, series.array.dtype) == (
        (20, 512, 512),
        "sagittal",
        np.float32,
    )
    locations = _header_locations(series)
    assert np.all(np.diff(locations) > 0)
    np.testing.assert_allclose(np.diff(locations), 1.5, atol=1e-3)
    assert series.spacing == pytest.approx((1.5, 0.3125, 0.3125), abs=1e-3)
    assert series.window is not None
    center, width = series.window
    assert 0 < center < float(series.array.max())
    assert width > 0
    assert sorted(f.name for f in series.files) == sorted(p.name for p in knee_dir.glob("*.dcm"))
    assert series.origin == pytest.approx(
        tuple(pydicom.dcmread(series.files[0], stop_before_pixels=True).ImagePositionPatient)
    )


def test_brain_folder_is_one_axial_series_despite_oblique(brain_dir: Path) -> None:
    scan = read_study(brain_dir)

    (series,) = scan.series
    assert scan.problems == ()
    assert (series.shape, series.plane) == ((20, 256, 256), "axial")
    assert series.orientation is not None
    normal = series.orientation[2]
    assert 0.05 < abs(normal[1]) < 0.2  # oblique: tilted about 7.7 degrees towards y
    locations = _header_locations(series)
    assert np.all(np.diff(locations) > 0)
    assert series.spacing[0] == pytest.approx(float(np.median(np.diff(locations))), abs=1e-6)
    assert series.spacing[0] == pytest.approx(6.97, abs=0.01)
    assert series.window is None
    assert series.warnings == ()
    assert float(series.array.std()) > 0


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")  # deflated.dcm's own header
def test_every_encoding_loads_or_is_a_file_problem(encodings_dir: Path) -> None:
    files = sorted(encodings_dir.glob("*.dcm"))

    scan = read_study(encodings_dir)

    loaded = {f for s in scan.series for f in s.files}
    problems = {p.path for p in scan.problems}
    assert loaded | problems == set(files)
    assert loaded & problems == set()
    by_file = {f.stem: s for s in scan.series for f in s.files}
    for name in COMPRESSED:
        array = by_file[name].array
        assert np.all(np.isfinite(array)), name
        assert float(array.max()) > float(array.min()), name


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")
def test_encodings_multiframe_without_geometry(encodings_dir: Path) -> None:
    (series,) = [
        s for s in read_study(encodings_dir).series if s.files[0].stem == "explicit_little"
    ]

    assert (series.shape, series.plane, series.origin) == ((16, 256, 256), "unknown", None)
    assert series.warnings[0].startswith("no slice geometry")


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_pydicom_mr_small_encodings_match_uncompressed(name: str) -> None:
    (reference,) = read_study(get_testdata_file("MR_small.dcm")).series

    (series,) = read_study(get_testdata_file(name)).series

    assert series.shape == reference.shape == (1, 64, 64)
    np.testing.assert_array_equal(series.array, reference.array)
