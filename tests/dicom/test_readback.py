"""Read-back: our objects are found in a folder and become heatmaps and results of the loaded series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support.dicom_results import TriagedStudy, not_run

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.dicom.readback import (
    align_heatmap,
    find_results,
    read_heatmap,
    read_report,
    results_for_series,
)
from napari_elnet.dicom.results import write_dicom_results


@pytest.fixture(scope="module")
def phantom_results(
    triaged_phantom: TriagedStudy, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("readback")
    study = triaged_phantom
    write_dicom_results(study.series, study.results, study.models, out)
    return out


def test_find_results_sorts_our_objects_by_kind(
    triaged_phantom: TriagedStudy, phantom_results: Path
) -> None:
    found = find_results(phantom_results)
    assessed = {r.task for r in triaged_phantom.results if r.probability is not None}
    assert [p.name for p in found.reports] == ["ELNET_SR.dcm"]
    assert {p.name for p in found.maps} == {f"ELNET_MAP_{t}.dcm" for t in assessed}
    assert {p.name for p in found.key_images} == {f"ELNET_KEY_{t}.dcm" for t in assessed}
    assert not find_results(triaged_phantom.folder), "source images are not results"


def test_report_reads_back_every_task(triaged_phantom: TriagedStudy, phantom_results: Path) -> None:
    study_uid, findings = read_report(phantom_results / "ELNET_SR.dcm")
    assert study_uid == triaged_phantom.series[0].study.study_uid
    by_task = {f.task: f for f in findings}
    for result in triaged_phantom.results:
        finding = by_task[result.task]
        if result.probability is not None:  # a DS value keeps 16 characters
            assert finding.probability == pytest.approx(result.probability, abs=1e-12)
        assert finding.threshold == result.threshold
        if result.probability is None:
            assert finding.evaluation == "not assessed"
        else:
            assert finding.evaluation == ("present" if result.decision else "absent")
        assert finding.demo


def test_results_for_series_restore_heatmaps_probabilities_and_top_slices(
    triaged_phantom: TriagedStudy, phantom_results: Path, tmp_path: Path
) -> None:
    shutil.copytree(phantom_results, tmp_path / "elnet")
    restored = {r.task: r for r in results_for_series(tmp_path, triaged_phantom.series)}
    for original in triaged_phantom.results:
        if original.probability is None:
            continue
        result = restored[original.task]
        assert result.series_index == original.series_index
        assert result.probability == pytest.approx(original.probability, abs=1e-12)
        assert result.top_slice == original.top_slice
        np.testing.assert_allclose(result.heatmap, original.heatmap, atol=1e-6)
        np.testing.assert_allclose(result.relevance, original.heatmap.sum(axis=(1, 2)), rtol=1e-5)
        assert result.applicability.applicable == original.applicability.applicable
        assert set(original.applicability.reasons) <= set(result.applicability.reasons)


def test_a_task_not_assessed_comes_back_without_probability_and_with_its_reason(
    triaged_phantom: TriagedStudy, tmp_path: Path
) -> None:
    assessed, first = triaged_phantom.results[1], triaged_phantom.results[0]
    missing, reason = not_run(first)
    write_dicom_results(
        triaged_phantom.series, [missing, assessed], triaged_phantom.models, tmp_path / "out"
    )
    restored = {r.task: r for r in results_for_series(tmp_path / "out", triaged_phantom.series)}
    assert set(restored) == {first.task, assessed.task}
    back = restored[first.task]
    assert back.probability is None and back.heatmap is None and back.top_slice is None
    assert back.applicability.applicable is False
    assert back.applicability.reasons == (reason,)
    assert restored[assessed.task].heatmap is not None


def test_knee_map_aligns_to_the_knee_series(triaged_knee: TriagedStudy, tmp_path: Path) -> None:
    study = triaged_knee
    write_dicom_results(study.series, study.results, study.models, tmp_path)
    (result,) = study.results
    heatmap = read_heatmap(tmp_path / "ELNET_MAP_acl.dcm")
    assert heatmap.task == "acl"
    np.testing.assert_allclose(
        align_heatmap(heatmap, study.series[result.series_index]), result.heatmap, atol=1e-6
    )


def test_map_does_not_align_to_another_series(
    triaged_phantom: TriagedStudy, phantom_results: Path
) -> None:
    result = next(r for r in triaged_phantom.results if r.probability is not None)
    heatmap = read_heatmap(phantom_results / f"ELNET_MAP_{result.task}.dcm")
    other = next(s for i, s in enumerate(triaged_phantom.series) if i != result.series_index)
    with pytest.raises(ConfigurationError):
        align_heatmap(heatmap, other)


def test_loading_a_study_folder_with_results_gives_only_its_series(
    triaged_phantom: TriagedStudy, phantom_results: Path, tmp_path: Path
) -> None:
    from napari_elnet.io import read_study

    shutil.copytree(triaged_phantom.folder, tmp_path / "study")
    shutil.copytree(phantom_results, tmp_path / "study" / "elnet")
    scan = read_study(tmp_path / "study")
    assert [s.uid for s in scan.series] == [s.uid for s in triaged_phantom.series]
    assert scan.problems == ()


def test_results_of_another_study_are_not_attached(
    triaged_phantom: TriagedStudy, triaged_knee: TriagedStudy, tmp_path: Path
) -> None:
    knee = triaged_knee
    write_dicom_results(knee.series, knee.results, knee.models, tmp_path / "knee_results")
    assert results_for_series(tmp_path / "knee_results", triaged_phantom.series) == []
