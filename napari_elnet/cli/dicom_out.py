"""``--dicom-out``: DICOM results of the ``triage`` command, one folder per study."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_elnet.common.errors import ConfigurationError, one_line

if TYPE_CHECKING:
    from napari_elnet.common.series import Series
    from napari_elnet.inference.triage import TaskResult, TriageProgress
    from napari_elnet.models.model_file import LoadedModel
    from napari_elnet.worklist.discovery import Discovery


def study_folder(out_root: str | os.PathLike[str], series: Sequence[Series]) -> Path:
    """``OUT/<study id>``: the worklist report's study id (a hash of the Study Instance UID, no PHI)."""
    from napari_elnet.worklist.discovery import uid_hash

    return Path(out_root) / f"dicom-{uid_hash(series[0].study.study_uid)}"


def require_dicom_studies(discovery: Discovery) -> None:
    """Refuse a root with MRNet ``.npy`` studies: they have no DICOM source to refer to."""
    npy = [s.name for s in discovery.studies if s.kind != "dicom"]
    if npy:
        raise ConfigurationError(
            f"--dicom-out needs DICOM studies; {len(npy)} MRNet .npy study(ies) under "
            f"{discovery.root} (e.g. {npy[0]}) have no DICOM source (no patient, study or instance UIDs)"
        )


def results_problem(error: BaseException) -> str:
    """How a study's DICOM results failure is reported, worded as the DICOM node's
    ``DICOM results: <exception type>: <message>`` (first line of the message only)."""
    return f"DICOM results: {one_line(error)}"


def dicom_results_steps(
    out_root: str | os.PathLike[str],
    warn: Callable[[str], object] | None = None,
    written: list[Path] | None = None,
) -> Any:
    """A per-study triage generator that also writes that study's DICOM results.

    Args:
        out_root: Each study's results go to ``out_root/<study id>/`` (see :func:`study_folder`).
        warn: Told (one line; None: standard error) about a study whose results cannot be
            written (any exception, e.g. highdicom refusing a value); it keeps its triage rows,
            and every task result of it carries the problem (:func:`results_problem`) in its
            warnings (the report's rows).
        written: When given, each study folder written is appended to it.
    """
    from napari_elnet.dicom.results import write_dicom_results
    from napari_elnet.inference.triage import triage_steps

    def steps(
        series: Sequence[Series], models: Sequence[LoadedModel], device: str
    ) -> Generator[TriageProgress, None, list[TaskResult]]:
        results = yield from triage_steps(series, models, device)
        folder = study_folder(out_root, series)
        try:
            write_dicom_results(series, results, models, folder)
        except Exception as error:  # the triage stands; the results problem is reported
            problem = results_problem(error)
            (warn or sys.stderr.write)(f"warning: {folder.name}: {problem}\n")
            return [replace(r, warnings=(*r.warnings, problem)) for r in results]
        if written is not None:
            written.append(folder)
        return results

    return steps
