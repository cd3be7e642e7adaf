"""Multi-frame DICOM (Enhanced MR with functional groups, plain multi-frame without geometry).

Invariants, one test each:

1. Enhanced MR frames become slices sorted by their per-frame PlanePositionSequence, with per-frame
   PixelValueTransformationSequence rescale and shared PixelMeasuresSequence spacing.
2. Frames with more than one orientation in one file split into one series per orientation.
3. A multi-frame file without plane positions keeps frame order, plane "unknown", and warns.
4. Slices of multi-frame and single-frame files list their file once per slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from support.dicom_factory import SAGITTAL, write_enhanced_mr

from napari_elnet.io import read_study


def test_enhanced_mr_frames_sorted_and_rescaled(tmp_path: Path) -> None:
    # Frame i: value i, slope slopes[i], position z; sorted by z the frames are 1, 3, 0, 2.
    path = write_enhanced_mr(
        tmp_path / "enh.dcm",
        [(0.0, 0.0, 6.0), (0.0, 0.0, 0.0), (0.0, 0.0, 9.0), (0.0, 0.0, 3.0)],
        slopes=[1.0, 2.0, 3.0, 4.0],
        pixel_spacing=(0.7, 0.8),
    )

    scan = read_study(tmp_path)

    (series,) = scan.series
    assert scan.problems == ()
    assert series.shape == (4, 6, 6)
    np.testing.assert_array_equal(series.array[:, 0, 0], [1 * 2, 3 * 4, 0 * 1, 2 * 3])
    assert series.spacing == pytest.approx((3.0, 0.7, 0.8))
    assert (series.plane, series.origin, series.number) == ("axial", (0.0, 0.0, 0.0), 7)
    assert series.files == (path,) * 4
    assert series.warnings == ()


def test_enhanced_mr_with_two_orientations_splits(tmp_path: Path) -> None:
    path = write_enhanced_mr(tmp_path / "enh.dcm", [(0, 0, 0), (0, 0, 2), (0, 0, 4), (2, 0, 0)])
    ds = pydicom.dcmread(path)
    sagittal = Dataset()
    sagittal.ImageOrientationPatient = list(SAGITTAL)
    ds.PerFrameFunctionalGroupsSequence[3].PlaneOrientationSequence = DicomSequence([sagittal])
    ds.save_as(path, enforce_file_format=True)

    series = read_study(tmp_path).series

    assert sorted((s.plane, s.shape[0]) for s in series) == [("axial", 3), ("sagittal", 1)]


def test_multiframe_without_positions_keeps_frame_order(tmp_path: Path) -> None:
    write_enhanced_mr(tmp_path / "cine.dcm", None, values=[30, 10, 20])

    (series,) = read_study(tmp_path).series

    np.testing.assert_array_equal(series.array[:, 0, 0], [30, 10, 20])
    assert (series.plane, series.orientation, series.origin) == ("unknown", None, None)
    assert series.spacing == pytest.approx((9.0, 0.7, 0.8))  # SliceThickness, PixelSpacing
    assert series.warnings[0].startswith("no slice geometry")
