"""Coded concepts of the result objects: standard DICOM/SNOMED codes where one fits, our own otherwise.

Task findings (ACL tear, meniscal tear, abnormal knee, or a user's own label) and the probability of
each have no standard code that we could check here, so they use the private coding scheme
``99NAPARIELNET`` (private schemes start with "99", PS3.16 section 8); the code value is the task name,
which makes read-back exact.
"""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

CODING_SCHEME = "99NAPARIELNET"
"""Designator of our private coding scheme."""
CODING_SCHEME_NAME = "napari-elnet task codes"

FINDING_NAMES: dict[str, str] = {
    "acl": "Anterior cruciate ligament tear",
    "meniscus": "Meniscal tear",
    "abnormal": "Abnormal knee MRI",
}
"""Meaning of the finding of each known task; other tasks use their own name."""

PRESENT = codes.SCT.Present
ABSENT = codes.SCT.Absent
NOT_ASSESSED = codes.SCT.NotEvaluated
"""Qualitative evaluation values: present / absent at the model's threshold / not assessed."""
PROBABILITY_UNIT = CodedConcept("1", "UCUM", "no units")
IMAGING_PROCEDURE = codes.SCT.ImagingProcedure
CLASS_ACTIVATION = codes.DCM.ClassActivation
"""Quantity of the parametric map (CID 7180): a class activation (FullGrad) map."""
REASON = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
"""Concept name of the TEXT item that says why a task was not assessed (TID 1501)."""
THRESHOLD_SUFFIX = "-thr"
PROBABILITY_SUFFIX = "-prob"


def finding_meaning(task: str) -> str:
    """Human-readable name of the finding a task's model predicts."""
    return FINDING_NAMES.get(task, task)


def finding_type(task: str) -> CodedConcept:
    """The finding of a task, in our private scheme (code value = task name)."""
    return CodedConcept(task, CODING_SCHEME, finding_meaning(task))


def probability_name(task: str) -> CodedConcept:
    """Concept name of a task's probability measurement."""
    return CodedConcept(
        f"{task}{PROBABILITY_SUFFIX}", CODING_SCHEME, f"Probability of {finding_meaning(task)}"
    )


def threshold_name(task: str) -> CodedConcept:
    """Concept name of a task's decision threshold measurement."""
    return CodedConcept(
        f"{task}{THRESHOLD_SUFFIX}",
        CODING_SCHEME,
        f"Decision threshold for {finding_meaning(task)}",
    )
