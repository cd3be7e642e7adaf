"""Source headers of a series: SOP instances, frame numbers and positions per slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from support.dicom_factory import write_enhanced_mr, write_stack
from support.dicom_results import dciodvfy

from napari_elnet.common.errors import ElnetWarning
from napari_elnet.dicom.parametric_map import heatmap_map
from napari_elnet.dicom.readback import align_heatmap, read_heatmap
from napari_elnet.dicom.source import read_source
from napari_elnet.io import load_study


def test_multiframe_slices_get_their_frames_by_position(tmp_path: Path) -> None:
    """Frames stored out of order along the normal: slice i refers to the frame at its position."""
    path = write_enhanced_mr(tmp_path / "mf.dcm", [[0, 0, z] for z in (6.0, 0.0, 3.0, 9.0)])
    ds = pydicom.dcmread(path)
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()  # the factory leaves it out
    ds.save_as(path)
    (series,) = load_study(tmp_path)
    source = read_source(series)
    assert [s.frame_number for s in source.slices] == [2, 3, 1, 4]
    assert [s.position for s in source.slices] == [(0, 0, 0), (0, 0, 3), (0, 0, 6), (0, 0, 9)]
    assert {s.sop_instance_uid for s in source.slices} == {ds.SOPInstanceUID}

    heat = np.random.default_rng(0).random(series.shape).astype(np.float32)
    out = tmp_path / "out" / "map.dcm"
    out.parent.mkdir()
    heatmap_map(source, heat, "acl").save_as(out, enforce_file_format=True)
    assert dciodvfy(out)[0] == []
    np.testing.assert_array_equal(align_heatmap(read_heatmap(out), series), heat)
    frames = {
        tuple(float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient): int(
            f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber
        )
        for f in pydicom.dcmread(out).PerFrameFunctionalGroupsSequence
    }
    assert frames == {(0, 0, 6): 1, (0, 0, 0): 2, (0, 0, 3): 3, (0, 0, 9): 4}


def test_single_frame_slices_refer_to_their_own_instances(tmp_path: Path) -> None:
    write_stack(tmp_path, 5)
    (series,) = load_study(tmp_path)
    source = read_source(series)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in series.files]
    assert [s.sop_instance_uid for s in source.slices] == uids
    assert all(s.frame_number is None for s in source.slices)
    assert len(source.datasets) == 5


def _stack_with(tmp_path: Path, **elements: str) -> Path:
    """A three-slice axial stack whose headers carry ``elements`` (as written by a scanner)."""
    folder = tmp_path / "study"
    for path in write_stack(folder, 3):
        ds = pydicom.dcmread(path)
        for keyword, value in elements.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    return folder


def test_acr_nema_dates_and_times_are_copied_in_dicom_3_format(tmp_path: Path) -> None:
    """StudyTime '09:11:56' (real files in ../shared/data/encodings) made highdicom raise."""
    folder = _stack_with(
        tmp_path, StudyDate="1996.06.11", StudyTime="09:11:56.25", PatientBirthDate="1950.01.02"
    )
    (series,) = load_study(folder)
    first = read_source(series).first
    assert (first.StudyDate, first.StudyTime, first.PatientBirthDate) == (
        "19960611",
        "091156.25",
        "19500102",
    )


def test_a_time_that_is_no_time_is_left_unknown_with_a_warning(tmp_path: Path) -> None:
    folder = _stack_with(tmp_path, StudyTime="noon", StudyDate="20200101")
    (series,) = load_study(folder)
    with pytest.warns(ElnetWarning, match=r"slice000\.dcm: StudyTime 'noon' is not a DICOM TM"):
        first = read_source(series).first
    assert first.StudyTime in (None, "")
    assert first.StudyDate == "20200101"
