"""The structured report of one triaged study: a Comprehensive 3D SR with a TID 1500 measurement report.

One image measurement group (TID 1501) per task:

- tracking identifier ``ELNet <task>`` (and a new tracking UID),
- finding type: the task's finding (private scheme ``99NAPARIELNET``, code value = task name),
- algorithm identification (TID 4019): name ``ELNet``, the software version, and parameters naming the
  model file, its SHA-256, the decision threshold and whether the weights are demonstration weights,
- qualitative evaluation "<the task's finding>" = present / absent (at the model's threshold) / not
  evaluated,
- the probability as a numeric measurement (unit "no units"), and the decision threshold as another,
  both absent when the task was not assessed,
- why a task was not assessed (or what limits its applicability) as TEXT qualitative evaluations,
- the most informative slice as the group's source image (that SOP instance, and frame if multi-frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from highdicom import UID
from highdicom.sr import (
    AlgorithmIdentification,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from napari_elnet.dicom import concepts, identity
from napari_elnet.dicom.source import SliceReference

ALGORITHM_NAME = "ELNet"
DEMO_PARAMETER = "demonstration weights: not for diagnosis"
APPLICABILITY_PREFIX = "applicability: "
APPLICABILITY_STATES = {True: "applicable", False: "not applicable", None: "unknown"}
"""Text of ``Applicability.applicable`` in the algorithm parameters."""
PARAMETER_PREFIXES = ("model file: ", "sha256: ", "threshold: ")


@dataclass(frozen=True)
class TaskFinding:
    """What the report says about one task.

    Attributes:
        task: Task name.
        probability: Positive-class probability, or None when the task was not assessed.
        threshold: The model's decision threshold.
        top_slice: The most informative slice's source instance, or None.
        reasons: Why the task was not assessed, or what limits the result (applicability).
        model_file: File name of the model ("" for an unsaved model).
        sha256: SHA-256 of the model file ("" when unknown).
        demo: Whether the model has demonstration weights.
        applicable: The applicability verdict (True, False, None: unknown).
    """

    task: str
    probability: float | None
    threshold: float
    top_slice: SliceReference | None
    reasons: tuple[str, ...]
    model_file: str
    sha256: str
    demo: bool
    applicable: bool | None = None

    @property
    def assessed(self) -> bool:
        """Whether there is a probability."""
        return self.probability is not None

    def evaluation(self) -> object:
        """The coded Finding value: present, absent or not evaluated."""
        if self.probability is None:
            return concepts.NOT_ASSESSED
        return concepts.PRESENT if self.probability >= self.threshold else concepts.ABSENT

    def algorithm(self) -> AlgorithmIdentification:
        """TID 4019 algorithm identification of the model used."""
        parameters = [
            f"model file: {self.model_file or 'in-memory (unsaved) model'}",
            f"sha256: {self.sha256 or 'unknown'}",
            f"threshold: {self.threshold:g}",
        ]
        parameters.append(APPLICABILITY_PREFIX + APPLICABILITY_STATES[self.applicable])
        if self.demo:
            parameters.append(DEMO_PARAMETER)
        return AlgorithmIdentification(
            name=ALGORITHM_NAME,
            version=identity.SOFTWARE_VERSION,
            parameters=parameters,
            manufacturer=identity.MANUFACTURER,
        )


def measurement_group(finding: TaskFinding) -> MeasurementsAndQualitativeEvaluations:
    """The TID 1501 image measurement group of one task."""
    algorithm = finding.algorithm()
    measurements = []
    if finding.probability is not None:
        measurements = [
            Measurement(
                name=concepts.probability_name(finding.task),
                value=float(finding.probability),
                unit=concepts.PROBABILITY_UNIT,
            ),
            Measurement(
                name=concepts.threshold_name(finding.task),
                value=float(finding.threshold),
                unit=concepts.PROBABILITY_UNIT,
            ),
        ]
    sources = None
    if finding.top_slice is not None:
        frame = finding.top_slice.frame_number
        sources = [
            SourceImageForMeasurementGroup(
                referenced_sop_class_uid=finding.top_slice.sop_class_uid,
                referenced_sop_instance_uid=finding.top_slice.sop_instance_uid,
                referenced_frame_numbers=None if frame is None else [frame],
            )
        ]
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=UID(), identifier=f"ELNet {finding.task}"),
        finding_type=concepts.finding_type(finding.task),
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=[
            QualitativeEvaluation(
                name=concepts.finding_type(finding.task),
                value=finding.evaluation(),  # type: ignore[arg-type]
            )
        ],
        source_images=sources,
    )
    container = group[0]
    for reason in finding.reasons:
        container.ContentSequence.append(
            TextContentItem(
                name=concepts.REASON,
                value=reason[:1024],
                relationship_type=RelationshipTypeValues.CONTAINS,
            )
        )
    return group


def structured_report(
    evidence: Sequence[Dataset],
    findings: Sequence[TaskFinding],
    series_number: int = identity.SR_SERIES_NUMBER,
) -> Comprehensive3DSR:
    """Build the Comprehensive 3D SR of one study.

    Args:
        evidence: Headers of the source instances the report refers to (one study; at least one);
            the patient and study modules are copied from them.
        findings: One finding per task.
        series_number: SeriesNumber of the new series.
    """
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=identity.DEVICE_UID,
            name=identity.MANUFACTURER,
            manufacturer_name=identity.MANUFACTURER,
            model_name=identity.MODEL_NAME,
        ),
    )
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=device),
        procedure_reported=concepts.IMAGING_PROCEDURE,
        imaging_measurements=[measurement_group(f) for f in findings],
    )
    sr = Comprehensive3DSR(
        evidence=list(evidence),
        content=report[0],
        series_instance_uid=UID(),
        series_number=series_number,
        sop_instance_uid=UID(),
        instance_number=1,
        manufacturer=identity.MANUFACTURER,
        is_complete=True,
    )
    sr.SeriesDescription = "ELNet triage report"
    sr.SoftwareVersions = identity.SOFTWARE_VERSION
    sr.ManufacturerModelName = identity.MODEL_NAME
    scheme = Dataset()
    scheme.CodingSchemeDesignator = concepts.CODING_SCHEME
    scheme.CodingSchemeName = concepts.CODING_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = identity.MANUFACTURER
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr
