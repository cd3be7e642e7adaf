"""Shared fixtures: real scanner data from ../shared/data (skipped with a reason when absent).

Tests that also take napari's ``make_napari_viewer`` must list these fixtures before it: a skip in
setup after the viewer fixture has started makes napari's teardown fail (it reads the call report).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real DICOM data not found at {path} (../shared/data is not part of the repo)")
    return path


@pytest.fixture
def knee_dir() -> Path:
    """Real sagittal knee DESS series, 20 slices of 512x512."""
    return _shared("knee_dess_sagittal")


@pytest.fixture
def brain_dir() -> Path:
    """Real oblique axial brain PD series, 20 slices of 256x256."""
    return _shared("brain_pd_axial_oblique")


@pytest.fixture
def encodings_dir() -> Path:
    """Single MR files in many transfer syntaxes."""
    return _shared("encodings")
