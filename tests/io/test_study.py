"""Study loading (napari_elnet.io): grouping, problems and the public API.

Invariants, one test each (geometry in io/test_geometry.py, multi-frame in io/test_multiframe.py,
MRNet in io/test_mrnet.py, real scanner data in io/test_real_data.py):

1. Files are grouped by SeriesInstanceUID; each series lists exactly its own files.
2. One SeriesInstanceUID is split by ImageOrientationPatient.
3. One SeriesInstanceUID is split by image size.
4. Localizers (ImageType LOCALIZER) are split from the main stack.
5. Series are ordered by SeriesNumber, then description, then UID.
6. Series carry number, description, uid, modality and study identity from the headers.
7. RescaleSlope/Intercept are applied per slice; the array is float32.
8. The window is the first value of multi-valued WindowCenter/Width; None without one or with width 0.
9. DICOMDIR files are skipped without a problem (pydicom's DICOMDIR tree).
10. Objects without pixel data and non-DICOM files (LICENSE, .txt, .json) are skipped without a problem.
11. A corrupt .dcm is a FileProblem naming its path, and the rest of the folder loads.
12. Truncated pixel data is a FileProblem, and the rest of the series loads.
13. A transfer syntax without a decoder is a FileProblem naming the syntax.
14. read_study never raises for bad files; a missing path raises NoUsableSeriesError naming it.
15. load_study warns once per problem, "{path}: {reason}", as ElnetWarning.
16. load_study raises NoUsableSeriesError for an empty folder ("no DICOM or .npy image files found").
17. load_study raises NoUsableSeriesError naming the problems when nothing is usable.
18. A single file and a DICOMDIR path can be read directly.
19. is_study_path accepts folders, .dcm/.npy files and files with the DICOM preamble; never raises.
20. Large files (memory-mapped instead of read whole) load to the same values.
21. A colour image is a FileProblem saying only greyscale is loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import MPEG2MPML
from support.dicom_factory import CORONAL, SAGITTAL, STUDY_UID, write_slice, write_stack

from napari_elnet.common.errors import ElnetWarning, NoUsableSeriesError
from napari_elnet.common.series import Series, StudyInfo
from napari_elnet.io import (
    FileProblem,
    StudyScan,
    dicom_headers,
    is_study_path,
    load_study,
    read_study,
)

UID_A = "1.2.826.0.1.3680043.8.498.101"
UID_B = "1.2.826.0.1.3680043.8.498.102"


def test_files_are_grouped_by_series_uid(tmp_path: Path) -> None:
    files_a = write_stack(tmp_path, 3, prefix="a", series_uid=UID_A, series_number=1)
    files_b = write_stack(tmp_path, 2, prefix="b", series_uid=UID_B, series_number=2)

    scan = read_study(tmp_path)

    assert [s.uid for s in scan.series] == [UID_A, UID_B]
    assert [s.shape for s in scan.series] == [(3, 8, 8), (2, 8, 8)]
    assert scan.series[0].files == tuple(files_a)
    assert scan.series[1].files == tuple(files_b)
    assert scan.problems == ()


def test_one_uid_is_split_by_orientation(tmp_path: Path) -> None:
    write_stack(tmp_path, 3, prefix="ax", series_uid=UID_A)
    write_stack(tmp_path, 4, prefix="sag", series_uid=UID_A, orientation=SAGITTAL)

    series = read_study(tmp_path).series

    assert sorted((s.plane, s.shape[0]) for s in series) == [("axial", 3), ("sagittal", 4)]
    assert all(s.uid == UID_A for s in series)
    assert all("split into 2 stacks" in " ".join(s.warnings) for s in series)


def test_one_uid_is_split_by_image_size(tmp_path: Path) -> None:
    write_stack(tmp_path, 3, prefix="small", series_uid=UID_A, size=(8, 8))
    write_stack(tmp_path, 2, prefix="big", series_uid=UID_A, size=(16, 12))

    shapes = sorted(s.shape for s in read_study(tmp_path).series)

    assert shapes == [(2, 16, 12), (3, 8, 8)]


def test_localizer_is_split_from_main_stack(tmp_path: Path) -> None:
    write_stack(tmp_path, 4, prefix="main", series_uid=UID_A, description="PD SAG",
                orientation=SAGITTAL)  # fmt: skip
    for i, orientation in enumerate((SAGITTAL, CORONAL)):
        write_slice(tmp_path / f"loc{i}.dcm", series_uid=UID_A, description="PD SAG",
                    orientation=orientation, instance=50 + i,
                    image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))  # fmt: skip

    series = read_study(tmp_path).series

    by_description = sorted((s.description, s.plane, s.shape[0]) for s in series)
    assert by_description == [
        ("PD SAG", "sagittal", 4),
        ("PD SAG (localizer)", "coronal", 1),
        ("PD SAG (localizer)", "sagittal", 1),
    ]


def test_series_are_ordered_by_number_then_description(tmp_path: Path) -> None:
    write_slice(tmp_path / "c.dcm", series_uid="1.2.3.3", series_number=3, description="A")
    write_slice(tmp_path / "a.dcm", series_uid="1.2.3.1", series_number=10, description="A")
    write_slice(tmp_path / "b.dcm", series_uid="1.2.3.2", series_number=3, description="0")

    series = read_study(tmp_path).series

    assert [(s.number, s.description) for s in series] == [(3, "0"), (3, "A"), (10, "A")]


def test_series_metadata_comes_from_headers(tmp_path: Path) -> None:
    write_stack(tmp_path, 2, series_uid=UID_A, series_number=12, description="DESS SAG")

    (series,) = read_study(tmp_path).series

    assert (series.number, series.description, series.uid, series.modality) == (
        12, "DESS SAG", UID_A, "MR",
    )  # fmt: skip
    assert series.study == StudyInfo(
        study_uid=STUDY_UID,
        accession_number="ACC42",
        study_date="20240102",
        study_description="KNEE",
        patient_id="P001",
        patient_name="Doe^Jane",
    )
    assert series.name == "12: DESS SAG (axial)"


def test_rescale_is_applied_per_slice(tmp_path: Path) -> None:
    write_slice(tmp_path / "0.dcm", value=10, position=(0, 0, 0), slope=2.0, intercept=-5.0)
    write_slice(tmp_path / "1.dcm", value=10, position=(0, 0, 1), slope=0.5, intercept=100.0)
    write_slice(tmp_path / "2.dcm", value=-7, position=(0, 0, 2))

    (series,) = read_study(tmp_path).series

    assert series.array.dtype == np.float32
    np.testing.assert_array_equal(series.array[:, 0, 0], [15.0, 105.0, -7.0])


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (("40", "400"), (40.0, 400.0)),
        ((["40", "50"], ["400", "500"]), (40.0, 400.0)),
        (("0", "0"), None),
        (None, None),
    ],
)
def test_window_from_first_center_and_width(
    tmp_path: Path, window: tuple[object, object] | None, expected: tuple[float, float] | None
) -> None:
    write_slice(tmp_path / "w.dcm", window=window)

    (series,) = read_study(tmp_path).series

    assert series.window == expected


def test_dicomdir_is_skipped_without_problem(tmp_path: Path) -> None:
    tree = Path(get_testdata_file("DICOMDIR")).parent

    scan = read_study(tree)

    assert [p for p in scan.problems if "DICOMDIR" in p.path.name] == []
    assert scan.problems == ()
    # 98892003/MR700 holds 7 MR slices of 16x16 that are not DICOMDIRs.
    assert sum(s.shape[0] for s in scan.series) >= 7
    assert {s.modality for s in scan.series} == {"CR", "CT", "MR"}
    assert all(Path(f).name.upper().startswith("DICOMDIR") is False
               for s in scan.series for f in s.files)  # fmt: skip


def test_non_images_and_non_dicom_files_are_skipped_silently(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    (tmp_path / "LICENSE").write_text("BSD-3-Clause\n")
    (tmp_path / "notes.txt").write_text("knee, left\n")
    (tmp_path / "meta.json").write_text(json.dumps({"a": 1}))

    scan = read_study(tmp_path)

    assert [s.shape for s in scan.series] == [(2, 8, 8)]
    assert scan.problems == ()


def test_corrupt_dcm_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    write_stack(tmp_path, 3)
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")

    scan = read_study(tmp_path)

    assert [s.shape for s in scan.series] == [(3, 8, 8)]
    assert [p.path for p in scan.problems] == [bad, empty]
    assert all(p.reason for p in scan.problems)


def test_truncated_pixel_data_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    files = write_stack(tmp_path, 4)
    data = files[2].read_bytes()
    files[2].write_bytes(data[:-20])

    scan = read_study(tmp_path)

    (series,) = scan.series
    assert series.files == (files[0], files[1], files[3])
    np.testing.assert_array_equal(series.array[:, 0, 0], [0, 1, 3])
    (problem,) = scan.problems
    assert problem.path == files[2]
    assert "cannot be decoded" in problem.reason


def test_missing_decoder_is_reported_with_transfer_syntax(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    video = write_slice(tmp_path / "video.dcm", series_uid=UID_B)
    ds = pydicom.dcmread(video)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + b"\0" * 60])
    ds.save_as(video, enforce_file_format=True)

    scan = read_study(tmp_path)

    assert [s.shape for s in scan.series] == [(2, 8, 8)]
    (problem,) = scan.problems
    assert problem.path == video
    assert "MPEG2" in problem.reason


def test_read_study_never_raises_for_bad_files(tmp_path: Path) -> None:
    (tmp_path / "random.dcm").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "preamble_only.dcm").write_bytes(b"\0" * 128 + b"DICM")
    (tmp_path / "text.dcm").write_text("not dicom at all\n" * 20)
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "folder.dcm").mkdir()

    scan = read_study(tmp_path)

    assert isinstance(scan, StudyScan)
    assert scan.series == ()
    assert {p.path.name for p in scan.problems} == {
        "random.dcm", "preamble_only.dcm", "text.dcm", "garbage.npy",
    }  # fmt: skip
    assert all(isinstance(p, FileProblem) and p.reason for p in scan.problems)


def test_missing_path_raises_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(NoUsableSeriesError, match="nowhere: no such file or directory"):
        read_study(missing)


def test_load_study_warns_once_per_problem(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    bad1 = tmp_path / "bad1.dcm"
    bad2 = tmp_path / "bad2.dcm"
    bad1.write_bytes(b"x" * 10)
    bad2.write_bytes(b"y" * 10)

    with pytest.warns(ElnetWarning) as record:
        series = load_study(tmp_path)

    assert [s.shape for s in series] == [(2, 8, 8)]
    assert all(isinstance(s, Series) for s in series)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert messages[0].startswith(f"{bad1}: ")
    assert messages[1].startswith(f"{bad2}: ")


def test_load_study_raises_for_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("nothing here")

    with pytest.raises(NoUsableSeriesError, match=r"no DICOM or \.npy image files found") as info:
        load_study(tmp_path)

    assert str(tmp_path) in str(info.value)


def test_a_folder_of_dicom_objects_without_images_is_not_called_empty(tmp_path: Path) -> None:
    """An RT plan and a colour capture (e.g. a results folder): the message once said "no DICOM
    or .npy image files found" about a folder of DICOM files."""
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    shutil.copy(get_testdata_file("SC_rgb_jpeg.dcm"), tmp_path / "capture.dcm")
    assert read_study(tmp_path).skipped == 2
    with pytest.raises(NoUsableSeriesError) as info:
        load_study(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: no image series; 2 DICOM file(s) hold none (")
    assert "no DICOM" not in str(info.value)


def test_load_study_raises_naming_problems_when_nothing_loads(tmp_path: Path) -> None:
    (tmp_path / "bad.dcm").write_bytes(b"z" * 10)

    with pytest.warns(ElnetWarning), pytest.raises(NoUsableSeriesError) as info:
        load_study(tmp_path)

    message = str(info.value)
    assert message.startswith(f"{tmp_path}: no usable image series; 1 file(s) could not be loaded")
    assert "bad.dcm" in message


def test_single_file_and_dicomdir_path_are_read(tmp_path: Path) -> None:
    files = write_stack(tmp_path, 3)
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")

    (single,) = read_study(files[1]).series
    (whole,) = read_study(tmp_path / "DICOMDIR").series

    assert (single.shape, single.files) == ((1, 8, 8), (files[1],))
    assert whole.shape == (3, 8, 8)


def test_single_non_image_file_is_a_problem(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")

    scan = read_study(text)

    assert scan == StudyScan(series=(), problems=(FileProblem(text, "not a DICOM or .npy file"),))


def test_is_study_path(tmp_path: Path) -> None:
    dcm = write_slice(tmp_path / "a.dcm")
    bare = tmp_path / "IM0001"
    shutil.copy(dcm, bare)
    npy = tmp_path / "0001.npy"
    np.save(npy, np.zeros((2, 4, 4), dtype=np.uint8))
    text = tmp_path / "a.txt"
    text.write_text("x")

    results = {
        "folder": is_study_path(tmp_path),
        "dcm": is_study_path(dcm),
        "bare": is_study_path(str(bare)),
        "npy": is_study_path(npy),
        "txt": is_study_path(text),
        "missing": is_study_path(tmp_path / "missing.dcm"),
        "nul": is_study_path("a\0b"),
        "list": is_study_path([str(dcm)]),  # type: ignore[arg-type]
    }

    assert results == {
        "folder": True, "dcm": True, "bare": True, "npy": True,
        "txt": False, "missing": False, "nul": False, "list": False,
    }  # fmt: skip


def test_memory_mapped_files_load_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stack(tmp_path, 3, slope=2.0)
    (read_whole,) = read_study(tmp_path).series
    monkeypatch.setattr(dicom_headers, "_READ_WHOLE_BYTES", 0)

    scan = read_study(tmp_path)

    (mapped,) = scan.series
    assert scan.problems == ()
    np.testing.assert_array_equal(mapped.array, read_whole.array)
    np.testing.assert_array_equal(mapped.array[:, 0, 0], [0.0, 2.0, 4.0])


def test_colour_image_is_a_problem(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    colour = write_slice(tmp_path / "rgb.dcm", series_uid=UID_B)
    ds = pydicom.dcmread(colour)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.zeros((8, 8, 3), dtype=np.uint8).tobytes()
    ds.save_as(colour, enforce_file_format=True)

    scan = read_study(tmp_path)

    assert [s.shape for s in scan.series] == [(2, 8, 8)]
    assert scan.problems == (
        FileProblem(colour, "colour image (RGB, 3 samples per pixel): only greyscale is loaded"),
    )
