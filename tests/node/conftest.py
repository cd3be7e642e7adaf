"""Fixtures of the node tests: a small phantom study (cached) and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.dicom_peers import phantom_cache_dir, phantom_template
from support.worklist_factory import make_models

from napari_elnet.models.model_file import LoadedModel


@pytest.fixture(scope="session")
def phantom_files(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """One small phantom knee study (24 files), the template every test clones."""
    return phantom_template(phantom_cache_dir(request, tmp_path_factory))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedModel]:
    """Randomly initialised K=1 models for the three tasks (fast on CPU)."""
    folder = tmp_path_factory.mktemp("models")
    return make_models(folder, [("acl", "axial"), ("meniscus", "coronal"), ("abnormal", "axial")])
