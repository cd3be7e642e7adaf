"""What the node tells its user (CLI log, napari panel) as studies move through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from napari_elnet.worklist.report import StudyResult

EventKind = Literal["receiving", "complete", "triaged", "skipped", "sent", "error", "refused"]
STAGES: tuple[EventKind, ...] = ("receiving", "complete", "triaged")


@dataclass(frozen=True)
class NodeEvent:
    """One step of one study (or a refused instance).

    Attributes:
        kind: ``receiving`` (an instance arrived), ``complete`` (quiet for the stable time, queued for
            triage), ``triaged`` (in the report; ``result`` set), ``sent`` (results stored at the
            remote), ``error`` (``message`` says what failed) or ``refused`` (an instance was turned
            away; ``study_uid`` may be "").
        study_uid: StudyInstanceUID.
        study_id: The worklist's id of the study (``dicom-`` + hash), "" when unknown.
        instances: Instances received so far (``receiving``, ``complete``).
        result: The report's row (``triaged``).
        message: Human-readable detail.
        late: ``triaged``: instances that arrived after the study's previous triage (0: its first).
    """

    kind: EventKind
    study_uid: str = ""
    study_id: str = ""
    instances: int = 0
    result: StudyResult | None = None
    message: str = ""
    late: int = 0


EventCallback = Callable[[NodeEvent], None]
