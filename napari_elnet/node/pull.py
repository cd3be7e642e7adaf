"""Query and retrieve: find studies on a PACS with C-FIND (study root) and fetch them with C-GET.

C-GET brings the instances back on the same association, so the PACS needs no route to the node
(unlike C-MOVE); each instance goes through the receiver's checks and the atomic store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt

from napari_elnet.common.errors import ElnetError
from napari_elnet.node.config import NodeConfig, Peer
from napari_elnet.node.contexts import (
    STORAGE_CLASSES,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    storage_contexts,
)
from napari_elnet.node.receiver import InstanceCallback, Receiver
from napari_elnet.node.store import Store

_PENDING = (0xFF00, 0xFF01)


class QueryError(ElnetError):
    """The remote AE refused the query or the retrieval."""


@dataclass(frozen=True)
class StudyQuery:
    """C-FIND keys (empty: any). Dates as DICOM ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD``."""

    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession: str = ""


@dataclass(frozen=True)
class FoundStudy:
    """One study a C-FIND answered."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modalities: str = ""
    instances: int | None = None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _ae(calling_ae: str, timeout: float) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = timeout
    return ae


def find_studies(
    peer: Peer, query: StudyQuery, calling_ae: str = "ELNET", timeout: float = 30.0
) -> list[FoundStudy]:
    """The studies on ``peer`` matching ``query`` (C-FIND, study root, study level).

    Raises:
        QueryError: Association refused, or a failure status.
    """
    ae = _ae(calling_ae, timeout)
    ae.add_requested_context(STUDY_ROOT_FIND)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    identifier.PatientID = query.patient_id
    identifier.PatientName = query.patient_name
    identifier.StudyDate = query.study_date
    identifier.AccessionNumber = query.accession
    identifier.StudyDescription = ""
    identifier.ModalitiesInStudy = ""
    identifier.NumberOfStudyRelatedInstances = ""
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise QueryError(peer.refusal("C-FIND", bool(assoc.is_rejected), calling_ae))
    found: list[FoundStudy] = []
    try:
        for status, answer in assoc.send_c_find(identifier, STUDY_ROOT_FIND):
            code = getattr(status, "Status", None)
            if code is None:
                raise QueryError(
                    f"{peer}: C-FIND got no response (the PACS aborted: does it allow C-FIND "
                    f"from AE title {calling_ae}?)"
                )
            if code in _PENDING and answer is not None:
                found.append(_found(answer))
            elif code != 0x0000:
                raise QueryError(f"{peer}: C-FIND failed with status 0x{int(code):04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return found


def _found(answer: Dataset) -> FoundStudy:
    count = _text(answer, "NumberOfStudyRelatedInstances")
    return FoundStudy(
        study_uid=_text(answer, "StudyInstanceUID"),
        patient_id=_text(answer, "PatientID"),
        patient_name=_text(answer, "PatientName"),
        study_date=_text(answer, "StudyDate"),
        accession=_text(answer, "AccessionNumber"),
        description=_text(answer, "StudyDescription"),
        modalities=_text(answer, "ModalitiesInStudy"),
        instances=int(count) if count.isdigit() else None,
    )


@dataclass(frozen=True)
class Retrieved:
    """How a C-GET went: sub-operations completed, failed and warned, as the remote counted them."""

    study_uid: str
    completed: int
    failed: int
    warnings: int


def retrieve_study(
    peer: Peer,
    study_uid: str,
    config: NodeConfig,
    store: Store,
    on_instance: InstanceCallback | None = None,
    timeout: float = 60.0,
) -> Retrieved:
    """Fetch one study with C-GET into ``store`` (same checks and limits as received instances).

    Raises:
        QueryError: Association refused, or the C-GET ended with a failure status.
    """
    receiver = Receiver(config, store, on_instance)
    ae = _ae(config.ae_title, timeout)
    ae.maximum_pdu_size = config.max_pdu
    ae.add_requested_context(STUDY_ROOT_GET)
    for context in storage_contexts():
        ae.add_requested_context(str(context.abstract_syntax), context.transfer_syntax)
    roles: list[Any] = [build_role(uid, scp_role=True) for uid in STORAGE_CLASSES]
    handlers: list[Any] = [(evt.EVT_C_STORE, receiver.handle_store)]
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, ext_neg=roles, evt_handlers=handlers
    )
    if not assoc.is_established:
        raise QueryError(peer.refusal("C-GET", bool(assoc.is_rejected), config.ae_title))
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    last: Dataset | None = None
    try:
        for status, _ in assoc.send_c_get(identifier, STUDY_ROOT_GET):
            if status is None or "Status" not in status:
                raise QueryError(
                    f"{peer}: C-GET of study {study_uid} got no response (the PACS aborted: does "
                    f"it allow C-GET from AE title {config.ae_title}?)"
                )
            last = status
    finally:
        if assoc.is_established:
            assoc.release()
    if last is None:
        raise QueryError(f"{peer}: C-GET of study {study_uid} got no response")
    code = int(last.Status)
    counts = [int(last.get(k, 0) or 0) for k in (
        "NumberOfCompletedSuboperations", "NumberOfFailedSuboperations",
        "NumberOfWarningSuboperations",
    )]  # fmt: skip
    if code not in (0x0000, 0xB000):
        raise QueryError(f"{peer}: C-GET of study {study_uid} ended with status 0x{code:04X}")
    return Retrieved(study_uid, *counts)
