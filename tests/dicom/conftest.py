"""Fixtures of the DICOM result tests: one small phantom study written as DICOM and triaged once.

The study is triaged with the default models once per session (a few seconds); each test writes its
own result objects.
"""

from __future__ import annotations

import pytest
from support.dicom_results import TriagedStudy, triaged_small_phantom


@pytest.fixture(scope="session")
def triaged_phantom() -> TriagedStudy:
    """A small phantom knee (ACL and meniscal tears) written as DICOM and triaged (default models)."""
    return triaged_small_phantom()


@pytest.fixture(scope="session")
def triaged_knee(tmp_path_factory: pytest.TempPathFactory) -> TriagedStudy:
    """The real sagittal knee (../shared/data) triaged by a sagittal ACL model saved to a file.

    The default models read axial and coronal series, which this one-series study lacks, so a
    freshly initialised sagittal model file stands in: its probability means nothing, but its
    heatmap, file name and SHA-256 go through the DICOM objects like any model's.
    """
    from conftest import SHARED_DATA

    from napari_elnet.inference.triage import run_triage
    from napari_elnet.io import load_study
    from napari_elnet.models.model_file import ModelInfo, build_model, load_model, save_model

    folder = SHARED_DATA / "knee_dess_sagittal"
    if not folder.is_dir():
        pytest.skip(
            f"real DICOM data not found at {folder} (../shared/data is not part of the repo)"
        )
    info = ModelInfo(task="acl", plane="sagittal", k=2)
    path = save_model(
        tmp_path_factory.mktemp("knee_model") / "acl_sagittal.pt", build_model(info), info
    )
    models = [load_model(path)]
    series = load_study(folder)
    return TriagedStudy(folder, series, run_triage(series, models, device="cpu"), models)
