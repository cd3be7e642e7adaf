"""The key image: RGB secondary capture of the top slice with the heatmap burned in and a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from support.dicom_factory import write_stack
from support.dicom_results import TriagedStudy, dciodvfy

from napari_elnet.dicom.key_image import (
    DEMO_WARNING,
    Legend,
    inferno,
    key_image,
    patient_orientation,
    render,
)
from napari_elnet.dicom.source import read_source
from napari_elnet.io import load_study


def _legend(demo: bool, probability: float = 0.91) -> Legend:
    return Legend("acl", probability, 0.5, 3, 20, "3: PD FS AX (axial)", demo)


def test_legend_names_task_probability_decision_and_demo_weights() -> None:
    lines = _legend(demo=True).lines()
    assert lines[0] == "ELNet acl: Anterior cruciate ligament tear"
    assert lines[1] == "probability 0.910 (positive at threshold 0.50)"
    assert lines[2] == "slice 4 of 20, 3: PD FS AX (axial)"
    assert lines[-1] == DEMO_WARNING
    assert DEMO_WARNING not in _legend(demo=False).lines()
    assert "negative" in _legend(demo=False, probability=0.2).lines()[1]


def test_render_adds_the_heatmap_in_inferno_and_a_legend_band_below() -> None:
    grey = np.full((64, 80), 100.0, dtype=np.float32)
    heat = np.zeros((64, 80), dtype=np.float32)
    heat[10, 20] = 1.0
    pixels = render(grey, heat, _legend(demo=True))
    assert pixels.dtype == np.uint8 and pixels.shape[1:] == (80, 3) and pixels.shape[0] > 64
    expected_cold = np.clip(100 + 0.6 * inferno(np.float32(0.0)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels[40, 40], expected_cold)
    assert pixels[10, 20].sum() > pixels[40, 40].sum() + 200  # the hot spot is bright yellow
    band = pixels[64:]
    assert (band > 128).any(), "the legend text is drawn"
    assert ((band[..., 0] > 200) & (band[..., 2] < 60)).any(), "the demo warning is orange"


def test_patient_orientation_letters() -> None:
    axial = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    sagittal = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    assert patient_orientation(axial) == ("L", "P")
    assert patient_orientation(sagittal) == ("P", "F")


@pytest.mark.parametrize("study_name", ["triaged_phantom", "triaged_knee"])
def test_key_image_refers_to_its_slice_and_passes_dciodvfy(
    study_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    study: TriagedStudy = request.getfixturevalue(study_name)
    result = next(r for r in study.results if r.probability is not None)
    source = read_source(study.series[result.series_index])
    legend = Legend(
        result.task, result.probability, result.threshold, result.top_slice,
        source.series.shape[0], source.series.name, demo=True,
    )  # fmt: skip
    path = tmp_path / "key.dcm"
    key_image(source, result.heatmap, legend).save_as(path, enforce_file_format=True)
    assert dciodvfy(path)[0] == []
    ds = pydicom.dcmread(path)
    assert ds.BurnedInAnnotation == "YES"
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.SamplesPerPixel == 3 and ds.PhotometricInterpretation == "RGB"
    assert ds.Columns == source.series.shape[2] and ds.Rows > source.series.shape[1]
    reference = ds.SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == source.slices[result.top_slice].sop_instance_uid
    assert ds.StudyInstanceUID == source.first.StudyInstanceUID


def test_an_oblique_series_gets_its_key_image(tmp_path: Path) -> None:
    """Oblique directions have several letters ('PL'): highdicom takes one and raised ValueError
    ('PL' is not a valid PatientOrientationValuesBiped) on the real jpeg_ls.dcm of ../shared/data."""
    oblique = (0.569486, 0.822001, 0.0, 0.0, 0.0, -1.0)  # that file's ImageOrientationPatient
    write_stack(tmp_path / "study", 3, orientation=oblique, size=(32, 32))
    (series,) = load_study(tmp_path / "study")
    source = read_source(series)
    heat = np.random.default_rng(0).random(series.shape).astype(np.float32)
    legend = Legend("acl", 0.7, 0.5, 1, 3, series.name, demo=True)
    path = tmp_path / "key.dcm"
    key_image(source, heat, legend).save_as(path, enforce_file_format=True)
    assert patient_orientation(series.orientation) == ("PL", "F")
    assert list(pydicom.dcmread(path).PatientOrientation) == ["PL", "F"]
    assert dciodvfy(path)[0] == []
