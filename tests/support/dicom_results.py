"""Helpers of the DICOM result tests (no tests here): a triaged study record, dicom3tools/dcmtk runners."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
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


def not_run(result: TaskResult) -> tuple[TaskResult, str]:
    """``result``'s task as if its model had not run (no series of its plane), and the reason."""
    from napari_elnet.inference.applicability import Applicability

    reason = f"the {result.task} model was not run: the study has no {result.plane} series"
    return TaskResult.not_assessed(
        result.task,
        result.plane,
        result.threshold,
        result.model_identity,
        Applicability(applicable=False, reasons=(reason,)),
    ), reason


PHANTOM_SEED = 7
_CACHE: dict[str, object] = {}
"""One generated phantom study (and its triage) per test session: generating takes ~10 s."""


def _cached_phantom() -> Path:
    """The small phantom study, generated once per session into a temporary folder."""
    if "folder" not in _CACHE:
        from napari_elnet.phantom import PhantomConfig, generate_study
        from napari_elnet.phantom.writers import write_dicom_study

        parent = Path(tempfile.mkdtemp(prefix="elnet-test-phantom-"))
        atexit.register(shutil.rmtree, parent, ignore_errors=True)
        config = PhantomConfig(slices=(18, 20), matrix=(256, 256))
        labels = {"acl": True, "meniscus": True}
        _CACHE["folder"] = write_dicom_study(
            generate_study(PHANTOM_SEED, config, labels), parent / "knee"
        )
    return _CACHE["folder"]  # type: ignore[return-value]


def write_small_phantom(folder: Path) -> Path:
    """A small phantom knee study (ACL and meniscal tears, 18-20 slices of 256x256) copied to ``folder``."""
    shutil.copytree(_cached_phantom(), folder)
    return folder


def triaged_small_phantom() -> TriagedStudy:
    """The session's phantom study triaged once with the default models (skip without them).

    Its folder is shared by the tests: read it, never write into it.
    """
    if "triaged" not in _CACHE:
        from napari_elnet.inference.triage import run_triage
        from napari_elnet.io import load_study
        from napari_elnet.models.defaults import load_default_models

        models = load_default_models()
        if not models:
            pytest.skip("no default models in this build")
        folder = _cached_phantom()
        series = load_study(folder)
        _CACHE["triaged"] = TriagedStudy(folder, series, run_triage(series, models, "cpu"), models)
    return _CACHE["triaged"]  # type: ignore[return-value]


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
    """dcmtk's dump of a structured report; fails the test when dsrdump cannot parse it or warns."""
    tool = require_tool("dsrdump", "dcmtk")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"dsrdump failed on {path}: {done.stderr}"
    assert done.stderr.strip() == "", f"dsrdump warned on {path}: {done.stderr}"
    return done.stdout
