"""write_dicom_results: the three kinds of objects, valid for dciodvfy, in the source study, refusals."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from support.dicom_results import TriagedStudy, dciodvfy

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series
from napari_elnet.dicom import identity
from napari_elnet.dicom.results import write_dicom_results


@pytest.fixture(scope="module")
def written(triaged_phantom: TriagedStudy, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("dicom_results")
    study = triaged_phantom
    return write_dicom_results(study.series, study.results, study.models, out)


def test_writes_report_then_map_and_key_image_per_assessed_task(
    triaged_phantom: TriagedStudy, written: list[Path]
) -> None:
    assessed = [r.task for r in triaged_phantom.results if r.probability is not None]
    assert assessed, "the phantom with two tears must give at least one assessed task"
    expected = ["ELNET_SR.dcm"]
    for task in assessed:
        expected += [f"ELNET_MAP_{task}.dcm", f"ELNET_KEY_{task}.dcm"]
    assert [p.name for p in written] == expected
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)


DOCUMENTED_WARNINGS = tuple(
    re.compile(pattern)
    for pattern in (
        r"Missing attribute or value that would be needed to build DICOMDIR - (Study Time|Patient ID)",
        r"is only permitted to be empty when actually unknown.*attribute <Laterality>",
        r"Unrecognized defined term <QUANTITY> for value 4 of attribute <(Image|Frame) Type>",
        r"Unrecognized defined term <99NAPARIELNET> for value 1 of attribute <Coding Scheme Designator>",
    )
)
"""The dciodvfy warnings the user guide lists with their reasons (docs/user-guide.md)."""


def test_every_object_passes_dciodvfy_with_only_the_documented_warnings(
    written: list[Path],
) -> None:
    for path in written:
        errors, warnings = dciodvfy(path)
        assert errors == [], f"{path.name}: {errors}"
        unexplained = [w for w in warnings if not any(p.search(w) for p in DOCUMENTED_WARNINGS)]
        assert unexplained == [], f"{path.name}: warnings not in the user guide: {unexplained}"


def test_real_knee_objects_pass_dciodvfy_with_only_the_documented_warnings(
    triaged_knee: TriagedStudy, tmp_path: Path
) -> None:
    study = triaged_knee
    written = write_dicom_results(study.series, study.results, study.models, tmp_path)
    assert [p.name for p in written] == ["ELNET_SR.dcm", "ELNET_MAP_acl.dcm", "ELNET_KEY_acl.dcm"]
    for path in written:
        errors, warnings = dciodvfy(path)
        assert errors == [], f"{path.name}: {errors}"
        assert all(any(p.search(w) for p in DOCUMENTED_WARNINGS) for w in warnings), warnings


def test_objects_are_new_series_in_the_source_study(
    triaged_phantom: TriagedStudy, written: list[Path]
) -> None:
    source = pydicom.dcmread(triaged_phantom.series[0].files[0], stop_before_pixels=True)
    source_series = {s.uid for s in triaged_phantom.series}
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in written]
    for ds in headers:
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.PatientName == source.PatientName
        assert ds.PatientID == source.PatientID
        assert ds.AccessionNumber == source.AccessionNumber
        assert ds.StudyDate == source.StudyDate
        assert ds.Manufacturer == identity.MANUFACTURER
        assert ds.SoftwareVersions == identity.SOFTWARE_VERSION
        assert ds.SeriesInstanceUID not in source_series
    assert len({ds.SeriesInstanceUID for ds in headers}) == len(headers)
    assert len({ds.SOPInstanceUID for ds in headers}) == len(headers)


def test_key_images_say_burned_in_annotation(written: list[Path]) -> None:
    for path in (p for p in written if p.name.startswith("ELNET_KEY_")):
        ds = pydicom.dcmread(path)
        assert ds.BurnedInAnnotation == "YES"
        assert ds.PhotometricInterpretation == "RGB"
        assert ds.pixel_array.ndim == 3 and ds.pixel_array.shape[2] == 3


def test_mrnet_npy_input_is_refused(triaged_phantom: TriagedStudy, tmp_path: Path) -> None:
    npy = tmp_path / "0001.npy"
    np.save(npy, np.zeros((3, 8, 8), dtype=np.uint8))
    series = [dataclasses.replace(s, files=(npy,) * s.shape[0]) for s in triaged_phantom.series]
    with pytest.raises(ConfigurationError, match=r"MRNet \.npy input has no DICOM source"):
        write_dicom_results(series, triaged_phantom.results, triaged_phantom.models, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_series_no_map_can_be_placed_on_leaves_no_empty_folder(
    triaged_phantom: TriagedStudy, tmp_path: Path
) -> None:
    """Refused after the checks up front (no slice geometry): the folder once stayed, empty."""
    result = next(r for r in triaged_phantom.results if r.probability is not None)
    series = list(triaged_phantom.series)
    series[result.series_index] = dataclasses.replace(series[result.series_index], orientation=None)
    out = tmp_path / "o"
    with pytest.raises(ConfigurationError, match="no slice geometry"):
        write_dicom_results(series, triaged_phantom.results, triaged_phantom.models, out)
    assert not out.exists()


def test_series_without_files_is_refused(triaged_phantom: TriagedStudy, tmp_path: Path) -> None:
    series = [Series(array=s.array) for s in triaged_phantom.series]
    with pytest.raises(ConfigurationError, match="DICOM results need DICOM input"):
        write_dicom_results(series, triaged_phantom.results, triaged_phantom.models, tmp_path)


@pytest.mark.parametrize("where", ["series folder", "study folder"])
def test_output_inside_the_input_folder_is_refused(
    triaged_phantom: TriagedStudy, where: str
) -> None:
    series_folder = triaged_phantom.series[0].files[0].parent
    assert series_folder.parent == triaged_phantom.folder  # sag/, cor/, ax/ in the study folder
    inside = (series_folder if where == "series folder" else triaged_phantom.folder) / "results"
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        write_dicom_results(
            triaged_phantom.series, triaged_phantom.results, triaged_phantom.models, inside
        )
    assert not inside.exists()


def test_result_without_its_model_is_refused(triaged_phantom: TriagedStudy, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no model given for task"):
        write_dicom_results(triaged_phantom.series, triaged_phantom.results, [], tmp_path)


def test_not_assessed_task_is_in_the_report_only(
    triaged_phantom: TriagedStudy, tmp_path: Path
) -> None:
    first = triaged_phantom.results[0]
    not_run = dataclasses.replace(
        first,
        probability=None,
        score=None,
        heatmap=None,
        relevance=None,
        top_slice=None,
        peak=None,
        series_index=None,
        warnings=(f"the {first.task} model was not run: the study has no axial series",),
    )
    written = write_dicom_results(
        triaged_phantom.series, [not_run], triaged_phantom.models, tmp_path
    )
    assert [p.name for p in written] == ["ELNET_SR.dcm"]
    errors, _ = dciodvfy(written[0])
    assert errors == []
