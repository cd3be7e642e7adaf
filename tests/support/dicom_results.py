"""Helpers of the DICOM result tests (no tests here): a triaged study record, dicom3tools/dcmtk runners."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from napari_elnet.common.series import Series
from napari_elnet.inference.triage import TaskResult
from napari_elnet.models.model_file import LoadedModel


@dataclass(frozen=True)
class TriagedStudy:
    """A DICOM study on disk, its loaded series, triage results and the models used."""

    folder: Path
    series: list[Series]
    results: list[TaskResult]
    models: list[LoadedModel]


PHANTOM_SEED = 7


def write_small_phantom(folder: Path) -> Path:
    """A small phantom knee study (ACL and meniscal tears, 18-20 slices of 256x256) written as DICOM."""
    from napari_elnet.phantom import PhantomConfig, generate_study
    from napari_elnet.phantom.writers import write_dicom_study

    config = PhantomConfig(slices=(18, 20), matrix=(256, 256))
    labels = {"acl": True, "meniscus": True}
    return write_dicom_study(generate_study(PHANTOM_SEED, config, labels), folder)


def require_tool(name: str, package: str) -> str:
    """Path of a command-line tool, or skip naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install {package}; scripts/setup.sh does it)")
    return path


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """dicom3tools' IOD check of one file: (error lines, warning lines)."""
    tool = require_tool("dciodvfy", "dicom3tools")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if line.startswith("Warning")]
    return errors, warnings


def dsrdump(path: Path) -> str:
    """dcmtk's dump of a structured report; fails the test when dsrdump cannot parse it."""
    tool = require_tool("dsrdump", "dcmtk")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"dsrdump failed on {path}: {done.stderr}"
    return done.stdout
