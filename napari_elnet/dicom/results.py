"""Write the triage results of one DICOM study as DICOM objects a PACS and other viewers show.

For one study: a structured report (all tasks), and per assessed task a parametric map of its FullGrad
heatmap and a key image. All are new series in the source study (same Study Instance UID, patient and
study modules copied by highdicom from the source headers) with new series and instance UIDs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from napari_elnet.common.atomic import write_atomic
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.outputs import ensure_outside_inputs
from napari_elnet.common.series import Series
from napari_elnet.dicom import identity
from napari_elnet.dicom.key_image import Legend, key_image
from napari_elnet.dicom.parametric_map import heatmap_map
from napari_elnet.dicom.source import SourceSeries, read_source, require_dicom
from napari_elnet.dicom.sr import TaskFinding, structured_report

if TYPE_CHECKING:
    from napari_elnet.inference.triage import TaskResult
    from napari_elnet.models.model_file import LoadedModel


def reasons_of(result: TaskResult) -> tuple[str, ...]:
    """Applicability reasons and warnings of a result, without repeats."""
    reasons = tuple(result.applicability.reasons)
    return tuple(dict.fromkeys((*reasons, *result.warnings)))


def _assessed(result: TaskResult) -> tuple[int, int, np.ndarray, float] | None:
    """(series index, top slice, heatmap, probability) of an assessed result; None when not assessed.

    A result is assessed when it has a probability (not withheld) and the model ran (heatmap, slice).
    """
    index, top, heatmap, probability = (
        result.series_index, result.top_slice, result.heatmap, result.probability,
    )  # fmt: skip
    if index is None or top is None or heatmap is None or probability is None:
        return None
    return index, top, heatmap, float(probability)


def require_dicom_study(series: Sequence[Series]) -> None:
    """Raise ConfigurationError unless ``series`` are DICOM series of one study (check before work)."""
    if not series:
        raise ConfigurationError("no series: DICOM results need a DICOM study")
    for item in series:
        require_dicom(item)
    studies = {item.study.study_uid for item in series}
    if len(studies) != 1 or not next(iter(studies)):
        raise ConfigurationError(
            f"DICOM results are written for one study at a time; the series belong to {len(studies)} "
            "studies (or have no Study Instance UID)"
        )


def write_dicom_results(
    series: Sequence[Series],
    results: Sequence[TaskResult],
    models: Sequence[LoadedModel],
    out_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write the SR, one parametric map and one key image per assessed task into ``out_dir``.

    Args:
        series: The study's series, as given to the triage (``result.series_index`` indexes them).
        results: Triage results of one study, one per task.
        models: The models that produced them (matched by task; file name, SHA-256, demo flag).
        out_dir: Output folder (created if needed); refused if it lies inside an input folder.

    Returns:
        The files written: ``ELNET_SR.dcm``, then ``ELNET_MAP_<task>.dcm`` and ``ELNET_KEY_<task>.dcm``
        per assessed task.

    Raises:
        ConfigurationError: Non-DICOM input (MRNet ``.npy``), series of several studies, no results,
            a result without its model, or an output folder inside the input.
    """
    if not results:
        raise ConfigurationError("no results to write as DICOM")
    require_dicom_study(series)
    by_task = {m.info.task: m for m in models}
    missing = [r.task for r in results if r.task not in by_task]
    if missing:
        raise ConfigurationError(f"no model given for task(s) {', '.join(missing)}")
    target = ensure_outside_inputs(out_dir, _input_folders(series), folder=True)

    sources: dict[int, SourceSeries] = {}

    def source_of(index: int) -> SourceSeries:
        if index not in sources:
            sources[index] = read_source(series[index])
        return sources[index]

    findings: list[TaskFinding] = []
    evidence: dict[str, Dataset] = {}
    objects: list[tuple[str, Dataset]] = []
    for number, result in enumerate(results):
        model = by_task[result.task]
        assessed = _assessed(result)
        source = None if assessed is None else source_of(assessed[0])
        findings.append(
            TaskFinding(
                task=result.task,
                probability=None if assessed is None else assessed[3],
                threshold=float(result.threshold),
                top_slice=None
                if source is None or assessed is None
                else source.slices[assessed[1]],
                reasons=reasons_of(result),
                applicable=result.applicability.applicable,
                model_file=model.path.name if model.path else "",
                sha256=model.sha256,
                demo=bool(model.info.demo),
            )
        )
        if source is None or assessed is None:
            continue
        _index, top, heatmap, probability = assessed
        dataset = source.dataset_of(top)
        evidence[str(dataset.SOPInstanceUID)] = dataset
        pmap = heatmap_map(source, heatmap, result.task, identity.MAP_SERIES_NUMBER + number)
        objects.append((identity.result_file_name("MAP", result.task), pmap))
        legend = Legend(
            task=result.task,
            probability=probability,
            threshold=float(result.threshold),
            slice_index=top,
            n_slices=source.series.shape[0],
            series_name=source.series.name,
            demo=bool(model.info.demo),
        )
        image = key_image(source, heatmap, legend, identity.KEY_IMAGE_SERIES_NUMBER + number)
        objects.append((identity.result_file_name("KEY", result.task), image))
    if not evidence:  # nothing assessed: the report still needs the study's patient and study
        first = source_of(0).first
        evidence[str(first.SOPInstanceUID)] = first
    report = structured_report(list(evidence.values()), findings)
    objects.insert(0, (identity.result_file_name("SR"), report))
    target.mkdir(parents=True, exist_ok=True)  # only now: a refused study leaves no empty folder
    return [_save(dataset, target / name) for name, dataset in objects]


def _input_folders(series: Sequence[Series]) -> list[Path]:
    """The folders holding the source files and the study folder holding them all (never written into).

    The study folder is the deepest folder common to every file, e.g. ``knee/`` for ``knee/sag/*.dcm``
    and ``knee/ax/*.dcm``.
    """
    folders = {Path(f).resolve().parent for item in series for f in item.files}
    if not folders:
        return []
    return sorted(folders | {Path(os.path.commonpath(sorted(folders)))})


def _save(dataset: Dataset, path: Path) -> Path:
    """Write a dataset as a DICOM file (with File Meta) atomically."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return write_atomic(path, buffer.getvalue())
