"""Opening a worklist study for display (napari_elnet.plugin.worklist_jobs), without a viewer."""

from __future__ import annotations

from pathlib import Path

from support.worklist_factory import make_models, write_dicom_study

from napari_elnet.common.steps import run_to_end
from napari_elnet.plugin.worklist_jobs import open_study_run
from napari_elnet.worklist import discover_studies


def test_an_opened_study_names_its_files_that_could_not_be_loaded(tmp_path: Path) -> None:
    study = tmp_path / "root" / "case"
    write_dicom_study(study, "1.2.826.0.1.3680043.8.498.77", planes=("axial",), slices=4)
    first = sorted(study.rglob("*.dcm"))[0]
    (first.parent / "zz_cut.dcm").write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    models = make_models(tmp_path / "models", [("acl", "axial")])
    (ref,) = discover_studies(tmp_path / "root").studies

    opened = run_to_end(open_study_run(ref, models, "cpu"))

    assert len(opened.series) == 1 and opened.series[0].shape[0] == 4
    assert len(opened.warnings) == 1 and opened.warnings[0].startswith("zz_cut.dcm: ")
    assert str(tmp_path) not in opened.warnings[0]  # the file's name only, never its folders
