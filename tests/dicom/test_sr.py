"""The structured report: dcmtk parses it; highdicom reads back the findings, probabilities, references."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from support.dicom_results import TriagedStudy, dciodvfy, dsrdump

from napari_elnet.dicom import concepts
from napari_elnet.dicom.results import write_dicom_results
from napari_elnet.dicom.source import read_source
from napari_elnet.dicom.sr import DEMO_PARAMETER, TaskFinding, structured_report


@pytest.fixture(scope="module")
def report(triaged_phantom: TriagedStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sr")
    study = triaged_phantom
    return write_dicom_results(study.series, study.results, study.models, out)[0]


def test_dsrdump_parses_the_report_and_shows_each_task(
    triaged_phantom: TriagedStudy, report: Path
) -> None:
    text = dsrdump(report)
    assert "Comprehensive 3D SR" in text
    assert "Imaging Measurement Report" in text
    for result in triaged_phantom.results:
        assert f'"ELNet {result.task}"' in text
        if result.probability is not None:
            assert f"Probability of {concepts.finding_meaning(result.task)}" in text


def test_highdicom_reads_back_probabilities_findings_and_top_slices(
    triaged_phantom: TriagedStudy, report: Path
) -> None:
    sr = hd.sr.srread(report)
    groups = hd.sr.MeasurementReport.from_sequence([sr]).get_image_measurement_groups()
    by_task = {g.finding_type.value: g for g in groups}
    assert set(by_task) == {r.task for r in triaged_phantom.results}
    for result in triaged_phantom.results:
        group = by_task[result.task]
        (evaluation,) = group.get_qualitative_evaluations()
        if result.probability is None:
            assert evaluation.value == concepts.NOT_ASSESSED
            assert group.get_measurements() == []
            continue
        measurements = {m.name.value: m.value for m in group.get_measurements()}
        assert measurements[f"{result.task}{concepts.PROBABILITY_SUFFIX}"] == pytest.approx(
            result.probability, abs=1e-12
        )
        assert measurements[f"{result.task}{concepts.THRESHOLD_SUFFIX}"] == result.threshold
        expected = concepts.PRESENT if result.probability >= result.threshold else concepts.ABSENT
        assert evaluation.value == expected
        source = read_source(triaged_phantom.series[result.series_index])
        (image,) = group.source_images
        reference = image.ReferencedSOPSequence[0]
        assert (
            reference.ReferencedSOPInstanceUID == source.slices[result.top_slice].sop_instance_uid
        )
        assert reference.ReferencedSOPClassUID == source.slices[result.top_slice].sop_class_uid


def test_algorithm_identification_names_model_file_hash_and_demo_flag(
    triaged_phantom: TriagedStudy, report: Path
) -> None:
    ds = pydicom.dcmread(report)
    text = dsrdump(report)
    assert "Algorithm Name" in text
    parameters = [
        str(item.TextValue)
        for container in ds.ContentSequence
        if container.ValueType == "CONTAINER"
        for group in container.get("ContentSequence", [])
        for item in group.get("ContentSequence", [])
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "111002"
    ]
    for model in triaged_phantom.models:
        assert f"model file: {model.path.name}" in parameters
        assert f"sha256: {model.sha256}" in parameters
    assert (DEMO_PARAMETER in parameters) == any(m.info.demo for m in triaged_phantom.models)


def test_every_result_object_is_evidence_of_the_report(report: Path) -> None:
    ds = pydicom.dcmread(report)
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    referenced = {
        image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for container in ds.ContentSequence
        if container.ValueType == "CONTAINER"
        for group in container.get("ContentSequence", [])
        for image in group.get("ContentSequence", [])
        if image.ValueType == "IMAGE"
    }
    assert referenced and referenced <= evidence


def test_not_assessed_finding_carries_its_reason(
    triaged_phantom: TriagedStudy, tmp_path: Path
) -> None:
    source = read_source(triaged_phantom.series[0])
    finding = TaskFinding(
        task="acl",
        probability=None,
        threshold=0.5,
        top_slice=None,
        reasons=("the acl model was not run: the study has no axial series",),
        model_file="acl_axial.pt",
        sha256="0" * 64,
        demo=True,
    )
    sr = structured_report([source.first], [finding])
    path = tmp_path / "sr.dcm"
    sr.save_as(path)
    errors, _ = dciodvfy(path)
    assert errors == []
    text = dsrdump(path)
    assert "Not Evaluated" in text
    assert "the acl model was not run" in text
