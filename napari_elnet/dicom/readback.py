"""Finding our result objects in a folder and turning them back into heatmaps and findings.

- :func:`find_results` lists the napari-elnet structured reports, parametric maps and key images under a
  folder (recognised by SOP class and Manufacturer, headers only).
- :func:`read_heatmap` reads a parametric map; :func:`align_heatmap` places its frames on the slices of
  a loaded series by position along the slice normal (highdicom may store frames in another order).
- :func:`read_report` reads the findings of a structured report.
- :func:`results_for_series` combines both into :class:`~napari_elnet.inference.triage.TaskResult`
  objects for the loaded series, so a study triaged elsewhere can be reviewed without re-running.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series
from napari_elnet.dicom import concepts, identity
from napari_elnet.dicom.parametric_map import CONTENT_LABEL
from napari_elnet.dicom.sr import APPLICABILITY_PREFIX, APPLICABILITY_STATES, DEMO_PARAMETER

if TYPE_CHECKING:
    from napari_elnet.inference.applicability import Applicability
    from napari_elnet.inference.triage import TaskResult

PARAMETRIC_MAP_STORAGE = "1.2.840.10008.5.1.4.1.1.30"
COMPREHENSIVE_3D_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.34"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
RESULT_SOP_CLASSES = (
    PARAMETRIC_MAP_STORAGE,
    COMPREHENSIVE_3D_SR_STORAGE,
    SECONDARY_CAPTURE_STORAGE,
)
_TASK_IN_DESCRIPTION = re.compile(r"^ELNet (\w+) FullGrad heatmap$")
_POSITION_TOLERANCE = 0.25
"""Largest offset of a map frame from a slice, as a fraction of the slice spacing (or of a pixel)."""


@dataclass(frozen=True)
class ResultFiles:
    """Our result objects found under a folder, each list sorted by path."""

    reports: tuple[Path, ...] = ()
    maps: tuple[Path, ...] = ()
    key_images: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.reports or self.maps or self.key_images)


def result_kind(path: str | os.PathLike[str]) -> str | None:
    """``"report"``, ``"map"`` or ``"key_image"`` for a napari-elnet result file, else None (never raises)."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Manufacturer"])
    except Exception:  # not DICOM, damaged, unreadable: not one of ours
        return None
    if str(ds.get("Manufacturer", "")) != identity.MANUFACTURER:
        return None
    return {
        COMPREHENSIVE_3D_SR_STORAGE: "report",
        PARAMETRIC_MAP_STORAGE: "map",
        SECONDARY_CAPTURE_STORAGE: "key_image",
    }.get(str(ds.get("SOPClassUID", "")))


def find_results(folder: str | os.PathLike[str]) -> ResultFiles:
    """Our result objects under ``folder`` (searched recursively; a file path is checked alone)."""
    root = Path(folder)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        return ResultFiles()
    found: dict[str, list[Path]] = {"report": [], "map": [], "key_image": []}
    for path in files:
        kind = result_kind(path)
        if kind is not None:
            found[kind].append(path)
    return ResultFiles(
        reports=tuple(found["report"]),
        maps=tuple(found["map"]),
        key_images=tuple(found["key_image"]),
    )


@dataclass(frozen=True, eq=False)
class HeatmapMap:
    """A heatmap parametric map as read from its file.

    Attributes:
        path: The file.
        task: Task of the heatmap.
        study_uid: StudyInstanceUID.
        source_series_uid: SeriesInstanceUID of the series it derives from.
        values: (F, H, W) float32 real-world values (0..1), in the file's frame order.
        positions: (F, 3) ImagePositionPatient of each frame (mm, LPS).
        orientation: (6,) ImageOrientationPatient shared by the frames.
        pixel_spacing: (row, column) mm.
        source_instances: SOP instance UID each frame derives from ("" when not recorded).
    """

    path: Path
    task: str
    study_uid: str
    source_series_uid: str
    values: np.ndarray
    positions: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    source_instances: tuple[str, ...]


def read_heatmap(path: str | os.PathLike[str]) -> HeatmapMap:
    """Read a napari-elnet heatmap parametric map.

    Raises:
        ConfigurationError: The file is not one of our heatmap maps, or misses its geometry.
    """
    path = Path(path)
    ds = dcmread(path)
    if (
        str(ds.get("SOPClassUID", "")) != PARAMETRIC_MAP_STORAGE
        or ds.get("ContentLabel") != CONTENT_LABEL
    ):
        raise ConfigurationError(f"{path}: not a napari-elnet heatmap parametric map")
    match = _TASK_IN_DESCRIPTION.match(str(ds.get("ContentDescription", "")))
    if match is None:
        raise ConfigurationError(
            f"{path}: no task in ContentDescription {ds.get('ContentDescription')!r}"
        )
    shared = ds.SharedFunctionalGroupsSequence[0]
    try:
        orientation = np.array(
            [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
        )
        spacing = shared.PixelMeasuresSequence[0].PixelSpacing
        frames = ds.PerFrameFunctionalGroupsSequence
        positions = np.array(
            [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in frames]
        )
    except (AttributeError, IndexError, KeyError) as error:
        raise ConfigurationError(f"{path}: no plane geometry in the functional groups") from error
    slope, intercept = _real_world_mapping(shared)
    values = np.asarray(ds.pixel_array, dtype=np.float32)
    if values.ndim == 2:
        values = values[None]
    if slope != 1.0 or intercept != 0.0:
        values = values * np.float32(slope) + np.float32(intercept)
    referenced = ds.get("ReferencedSeriesSequence")
    return HeatmapMap(
        path=path,
        task=match.group(1),
        study_uid=str(ds.StudyInstanceUID),
        source_series_uid=str(referenced[0].SeriesInstanceUID) if referenced else "",
        values=values,
        positions=positions,
        orientation=orientation,
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        source_instances=tuple(_frame_source(f) for f in frames),
    )


def _real_world_mapping(shared: Dataset) -> tuple[float, float]:
    """(slope, intercept) of the first real-world value mapping (1, 0 when absent)."""
    mappings = shared.get("RealWorldValueMappingSequence")
    if not mappings:
        return 1.0, 0.0
    item = mappings[0]
    return float(item.get("RealWorldValueSlope", 1.0)), float(
        item.get("RealWorldValueIntercept", 0.0)
    )


def _frame_source(frame: Dataset) -> str:
    """SOP instance UID a frame derives from, or ""."""
    for derivation in frame.get("DerivationImageSequence", []):
        for source in derivation.get("SourceImageSequence", []):
            return str(source.ReferencedSOPInstanceUID)
    return ""


def matches_series(heatmap: HeatmapMap, series: Series) -> bool:
    """Whether ``heatmap`` derives from ``series`` and lies on its grid (never raises)."""
    try:
        align_heatmap(heatmap, series)
    except ConfigurationError:
        return False
    return True


def frame_slices(heatmap: HeatmapMap, series: Series) -> np.ndarray:
    """Index of the slice of ``series`` each frame of ``heatmap`` lies on, shape (F,) int64.

    Raises:
        ConfigurationError: Different series, in-plane size, orientation, or a frame off the slices.
    """
    name = heatmap.path.name
    if heatmap.source_series_uid and series.uid and heatmap.source_series_uid != series.uid:
        raise ConfigurationError(
            f"{name}: derives from another series ({heatmap.source_series_uid})"
        )
    if heatmap.values.shape[1:] != series.shape[1:]:
        raise ConfigurationError(
            f"{name}: frames of {heatmap.values.shape[1:]} do not match series {series.name} "
            f"{series.shape[1:]}"
        )
    if series.orientation is None or series.origin is None:
        raise ConfigurationError(f"series {series.name} has no geometry to place {name} on")
    orientation = series.orientation
    if not np.allclose(heatmap.orientation, np.concatenate(orientation[:2]), atol=1e-3):
        raise ConfigurationError(f"{name}: orientation differs from series {series.name}")
    offsets = heatmap.positions - np.asarray(series.origin)
    slice_spacing, row_spacing, column_spacing = series.spacing
    along = offsets @ orientation[2] / slice_spacing
    in_plane = (
        np.abs(offsets @ orientation[0]) / column_spacing
        + np.abs(offsets @ orientation[1]) / row_spacing
    )
    indices = np.rint(along).astype(np.int64)
    off_grid = (np.abs(along - indices) > _POSITION_TOLERANCE) | (in_plane > _POSITION_TOLERANCE)
    outside = (indices < 0) | (indices >= series.shape[0])
    if np.any(off_grid | outside) or len(set(indices.tolist())) != len(indices):
        raise ConfigurationError(f"{name}: frames do not lie on the slices of series {series.name}")
    return indices


def align_heatmap(heatmap: HeatmapMap, series: Series) -> np.ndarray:
    """The map's frames re-ordered (never resampled) onto ``series``: (S, H, W) float32.

    Each frame goes to the slice at its position along the slice normal; slices without a frame are 0.

    Raises:
        ConfigurationError: As :func:`frame_slices`.
    """
    aligned = np.zeros(series.shape, dtype=np.float32)
    aligned[frame_slices(heatmap, series)] = heatmap.values
    return aligned


@dataclass(frozen=True)
class ReportedFinding:
    """One task's entry of a structured report.

    Attributes:
        task: Task name.
        evaluation: ``present``, ``absent`` or ``not assessed``.
        probability: Probability, or None when not assessed.
        threshold: Decision threshold, or None when not recorded.
        top_slice_uid: SOP instance UID of the most informative slice, or "".
        top_slice_frame: Its frame number for a multi-frame instance, else None.
        reasons: Why not assessed / what limits the result.
        parameters: Algorithm parameters (model file, sha256, threshold, demonstration flag).
        algorithm_version: Software version that wrote it.
    """

    task: str
    evaluation: str
    probability: float | None
    threshold: float | None
    top_slice_uid: str
    top_slice_frame: int | None
    reasons: tuple[str, ...] = ()
    parameters: tuple[str, ...] = field(default_factory=tuple)
    algorithm_version: str = ""

    @property
    def demo(self) -> bool:
        """Whether the model had demonstration weights."""
        return DEMO_PARAMETER in self.parameters

    @property
    def applicable(self) -> bool | None:
        """The applicability verdict recorded (None: unknown, or not recorded)."""
        state = self.parameter(APPLICABILITY_PREFIX)
        return next((k for k, v in APPLICABILITY_STATES.items() if v == state), None)

    def applicability(self) -> Applicability:
        """The recorded verdict and reasons as an Applicability (no score: not recorded)."""
        from napari_elnet.inference.applicability import Applicability

        return Applicability(applicable=self.applicable, reasons=self.reasons)

    def parameter(self, prefix: str) -> str:
        """The algorithm parameter starting with ``prefix`` (prefix removed), or ""."""
        return next((p[len(prefix) :] for p in self.parameters if p.startswith(prefix)), "")


_EVALUATIONS = {
    concepts.PRESENT.value: "present",
    concepts.ABSENT.value: "absent",
    concepts.NOT_ASSESSED.value: "not assessed",
}


def read_report(path: str | os.PathLike[str]) -> tuple[str, list[ReportedFinding]]:
    """The study UID and the findings of a napari-elnet structured report.

    Raises:
        ConfigurationError: The file is not a Comprehensive 3D SR with our measurement groups.
    """
    ds = dcmread(path)
    if str(ds.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR_STORAGE:
        raise ConfigurationError(f"{path}: not a Comprehensive 3D SR")
    findings = [_finding(group) for group in _measurement_groups(ds)]
    found = [f for f in findings if f is not None]
    if not found:
        raise ConfigurationError(f"{path}: no napari-elnet measurement groups")
    return str(ds.StudyInstanceUID), found


def _name(item: Dataset) -> tuple[str, str]:
    """(code value, scheme) of a content item's concept name (long code values included)."""
    code = item.ConceptNameCodeSequence[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    return str(value), str(code.get("CodingSchemeDesignator", ""))


def _code(item: Dataset) -> tuple[str, str]:
    """(code value, scheme) of a CODE content item's value."""
    code = item.ConceptCodeSequence[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    return str(value), str(code.get("CodingSchemeDesignator", ""))


def _measurement_groups(ds: Dataset) -> list[Dataset]:
    """The "Measurement Group" containers under "Imaging Measurements"."""
    groups = []
    for item in ds.get("ContentSequence", []):
        if item.ValueType == "CONTAINER" and _name(item) == ("126010", "DCM"):
            groups += [
                g
                for g in item.get("ContentSequence", [])
                if g.ValueType == "CONTAINER" and _name(g) == ("125007", "DCM")
            ]
    return groups


def _finding(group: Dataset) -> ReportedFinding | None:
    """One measurement group as a finding, or None when it is not one of ours."""
    items = list(group.get("ContentSequence", []))
    task = ""
    for item in items:
        if item.ValueType == "CODE" and _name(item) == ("121071", "DCM"):
            value, scheme = _code(item)
            if scheme == concepts.CODING_SCHEME:
                task = value
    if not task:
        return None
    evaluation = "not assessed"
    probability: float | None = None
    threshold: float | None = None
    top_uid, top_frame = "", None
    reasons: list[str] = []
    parameters: list[str] = []
    version = ""
    for item in items:
        name = _name(item)
        if item.ValueType == "CODE" and name == (task, concepts.CODING_SCHEME):
            evaluation = _EVALUATIONS.get(_code(item)[0], "not assessed")
        elif item.ValueType == "NUM":
            number = float(item.MeasuredValueSequence[0].NumericValue)
            if name[0] == f"{task}{concepts.PROBABILITY_SUFFIX}":
                probability = number
            elif name[0] == f"{task}{concepts.THRESHOLD_SUFFIX}":
                threshold = number
        elif item.ValueType == "IMAGE":
            reference = item.ReferencedSOPSequence[0]
            top_uid = str(reference.ReferencedSOPInstanceUID)
            frames = reference.get("ReferencedFrameNumber")
            if frames is not None:
                top_frame = int(frames[0] if isinstance(frames, Sequence) else frames)
        elif item.ValueType == "TEXT" and name == (
            concepts.REASON.value,
            concepts.REASON.scheme_designator,
        ):
            reasons.append(str(item.TextValue))
        elif item.ValueType == "TEXT" and name == ("111002", "DCM"):
            parameters.append(str(item.TextValue))
        elif item.ValueType == "TEXT" and name == ("111003", "DCM"):
            version = str(item.TextValue)
    return ReportedFinding(
        task=task,
        evaluation=evaluation,
        probability=probability,
        threshold=threshold,
        top_slice_uid=top_uid,
        top_slice_frame=top_frame,
        reasons=tuple(reasons),
        parameters=tuple(parameters),
        algorithm_version=version,
    )


def results_for_series(
    folder: str | os.PathLike[str], series: Sequence[Series]
) -> list[TaskResult]:
    """Task results re-created from the report and maps under ``folder`` for the loaded ``series``.

    Each assessed task whose heatmap map lies on one of ``series`` becomes a TaskResult with that
    heatmap, its relevance profile (sum over each slice, as FullGrad ranks slices), the reported
    probability and threshold, and the top slice recorded in the report (the relevance argmax when
    the referenced instance is not in the series), and the recorded applicability verdict and
    reasons. Tasks the report lists without a map (not assessed) follow, with ``probability``,
    heatmap, relevance, top slice and series index None. Not recorded: the decision score and the
    completeness residual (NaN).
    """
    from napari_elnet.inference.applicability import Applicability
    from napari_elnet.inference.triage import TaskResult

    files = find_results(folder)
    studies = {s.study.study_uid for s in series}
    reported: dict[str, ReportedFinding] = {}
    for path in files.reports:
        study_uid, findings = read_report(path)
        if study_uid in studies:  # a report of another study is not about these series
            reported.update({f.task: f for f in findings})
    results: list[TaskResult] = []
    placed: set[str] = set()
    for path in files.maps:
        heatmap = read_heatmap(path)
        index = next((i for i, s in enumerate(series) if matches_series(heatmap, s)), None)
        if index is None or heatmap.task in placed:
            continue
        placed.add(heatmap.task)
        chosen = series[index]
        values = align_heatmap(heatmap, chosen)
        finding = reported.get(heatmap.task)
        relevance = values.sum(axis=(1, 2))
        top = _top_slice(finding, heatmap, frame_slices(heatmap, chosen), relevance)
        peak = np.unravel_index(int(np.argmax(values)), values.shape)
        results.append(
            TaskResult(
                task=heatmap.task,
                plane=chosen.plane,
                probability=finding.probability if finding else None,
                score=math.nan,
                threshold=finding.threshold if finding and finding.threshold else 0.5,
                heatmap=values,
                relevance=relevance,
                top_slice=top,
                peak=(int(peak[0]), int(peak[1]), int(peak[2])),
                series_index=index,
                series_name=chosen.name,
                series_uid=chosen.uid,
                model_identity=_identity(heatmap.task, finding),
                completeness_residual=math.nan,
                warnings=() if finding else ("no structured report found",),
                applicability=finding.applicability() if finding else Applicability(),
            )
        )
    for task, finding in reported.items():
        if task not in placed and finding.evaluation == "not assessed":
            results.append(_not_assessed(finding, TaskResult))
    return results


def _not_assessed(finding: ReportedFinding, result_type: type[TaskResult]) -> TaskResult:
    """A reported task without a map: no probability, heatmap or slice (``plane`` unknown)."""
    return result_type.not_assessed(
        finding.task,
        "unknown",
        finding.threshold if finding.threshold is not None else 0.5,
        _identity(finding.task, finding),
        finding.applicability(),
    )


def _top_slice(
    finding: ReportedFinding | None,
    heatmap: HeatmapMap,
    slices: np.ndarray,
    relevance: np.ndarray,
) -> int:
    """The reported most informative slice as a slice index (the relevance argmax if not found)."""
    if finding is not None and finding.top_slice_uid in heatmap.source_instances:
        frames = [
            i for i, uid in enumerate(heatmap.source_instances) if uid == finding.top_slice_uid
        ]
        if len(frames) == 1:
            return int(slices[frames[0]])
    return int(np.argmax(relevance))


def _identity(task: str, finding: ReportedFinding | None) -> str:
    """Model identity text like ``LoadedModel.identity`` from the report's algorithm parameters."""
    if finding is None:
        return f"{task} (from DICOM results)"
    sha = finding.parameter("sha256: ")
    return f"{task} {finding.parameter('model file: ')}@{sha[:12]} (from DICOM results)"
