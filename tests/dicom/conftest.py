"""Fixtures of the DICOM result tests: one small phantom study written as DICOM and triaged once.

The study is triaged with the default models once per session (a few seconds); each test writes its
own result objects.
"""

from __future__ import annotations

import pytest
from support.dicom_results import TriagedStudy

PHANTOM_SEED = 7


@pytest.fixture(scope="session")
def triaged_phantom(tmp_path_factory: pytest.TempPathFactory) -> TriagedStudy:
    """A small phantom knee (ACL and meniscal tears) written as DICOM and triaged (default models)."""
    from napari_elnet.inference.triage import run_triage
    from napari_elnet.io import load_study
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.phantom import PhantomConfig, generate_study
    from napari_elnet.phantom.writers import write_dicom_study

    models = load_default_models()
    if not models:
        pytest.skip("no default models in this build")
    folder = tmp_path_factory.mktemp("phantom_study")
    config = PhantomConfig(slices=(18, 20), matrix=(256, 256))
    write_dicom_study(generate_study(PHANTOM_SEED, config, {"acl": True, "meniscus": True}), folder)
    series = load_study(folder)
    results = run_triage(series, models, device="cpu")
    return TriagedStudy(folder, series, results, models)
