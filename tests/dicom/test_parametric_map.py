"""The heatmap parametric map: values, geometry and references read back by pydicom and highdicom."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from support.dicom_factory import write_stack
from support.dicom_results import TriagedStudy, dciodvfy

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.dicom.parametric_map import heatmap_map
from napari_elnet.dicom.source import read_source
from napari_elnet.io import load_study


def _assessed(study: TriagedStudy):
    return next(r for r in study.results if r.probability is not None and r.heatmap is not None)


def _write(study: TriagedStudy, folder: Path) -> tuple[Path, object]:
    result = _assessed(study)
    source = read_source(study.series[result.series_index])
    path = folder / "map.dcm"
    heatmap_map(source, result.heatmap, result.task).save_as(path, enforce_file_format=True)
    return path, result


@pytest.mark.parametrize("study_name", ["triaged_phantom", "triaged_knee"])
def test_map_round_trips_values_geometry_and_references(
    study_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    study: TriagedStudy = request.getfixturevalue(study_name)
    path, result = _write(study, tmp_path)
    errors, _ = dciodvfy(path)
    assert errors == []
    series = study.series[result.series_index]
    source = read_source(series)
    uids = [s.sop_instance_uid for s in source.slices]
    pmap = pydicom.dcmread(path)  # headers as written; highdicom for the pixels by source instance
    values = hd.pm.ParametricMap.from_dataset(pmap, copy=True).get_pixels_by_source_instance(
        source_sop_instance_uids=uids
    )
    np.testing.assert_allclose(values, result.heatmap, atol=1e-6)
    assert pydicom.dcmread(path).pixel_array.dtype == np.float32  # FloatPixelData
    first = source.first
    assert pmap.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert pmap.StudyInstanceUID == first.StudyInstanceUID
    assert pmap.ReferencedSeriesSequence[0].SeriesInstanceUID == series.uid
    positions = {
        tuple(round(float(v), 3) for v in frame.PlanePositionSequence[0].ImagePositionPatient)
        for frame in pmap.PerFrameFunctionalGroupsSequence
    }
    assert positions == {tuple(round(v, 3) for v in s.position) for s in source.slices}
    assert int(pmap.NumberOfFrames) == series.shape[0]
    shared = pmap.SharedFunctionalGroupsSequence[0]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    np.testing.assert_allclose(orientation, np.concatenate(series.orientation[:2]), atol=1e-6)
    mapping = shared.RealWorldValueMappingSequence[0]
    assert mapping.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == "130402"
    first, last = (
        "DoubleFloatRealWorldValueFirstValueMapped",
        "DoubleFloatRealWorldValueLastValueMapped",
    )
    assert (mapping[first].value, mapping[last].value) == (0.0, 1.0)


def test_heatmap_of_another_shape_is_refused(triaged_phantom: TriagedStudy) -> None:
    result = _assessed(triaged_phantom)
    source = read_source(triaged_phantom.series[result.series_index])
    with pytest.raises(ConfigurationError, match="does not match series"):
        heatmap_map(source, result.heatmap[:, :-1], result.task)


def test_series_without_geometry_is_refused(triaged_phantom: TriagedStudy) -> None:
    result = _assessed(triaged_phantom)
    series = dataclasses.replace(triaged_phantom.series[result.series_index], orientation=None)
    source = dataclasses.replace(
        read_source(triaged_phantom.series[result.series_index]), series=series
    )
    with pytest.raises(ConfigurationError, match="no slice geometry"):
        heatmap_map(source, result.heatmap, result.task)


def test_series_without_frame_of_reference_is_refused_naming_the_file(tmp_path: Path) -> None:
    """highdicom raised a bare ValueError (a traceback on the command line) for such a series."""
    write_stack(tmp_path / "study", 3, size=(16, 16))  # positions and orientation, no FoR UID
    (series,) = load_study(tmp_path / "study")
    source = read_source(series)
    heat = np.zeros(series.shape, dtype=np.float32)
    with pytest.raises(ConfigurationError, match=r"slice000\.dcm: no FrameOfReferenceUID"):
        heatmap_map(source, heat, "acl")
