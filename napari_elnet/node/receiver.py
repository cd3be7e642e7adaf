"""The receiving application entity: answers C-ECHO and C-STORE and files instances in the store.

It keeps serving whatever a peer sends: an instance that cannot be parsed, lacks its UIDs or would
exceed the per-study byte limit gets a failure status (C210, A900, A700) and the association goes on;
a PDU longer than the negotiated maximum (e.g. a header claiming 2 GB) drops that association before
its body is read; garbage that is not a PDU is aborted by pynetdicom's state machine; calling AE titles
outside the allow list are rejected at association time. Each association runs on its own thread
(pynetdicom's threaded server), so one slow or hostile peer does not hold up the others.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from napari_elnet.node.config import NodeConfig
from napari_elnet.node.contexts import acceptor_contexts
from napari_elnet.node.store import Store, UidError, check_uid

LOGGER = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DATASET_MISMATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC210
_PDU_HEADER = 6
_PDU_SLACK = 1024  # PDV item headers and A-ASSOCIATE items on top of the negotiated maximum
_MESSAGE_SLACK = 64 * 1024  # command set and PDU headers on top of the largest dataset accepted


@dataclass(frozen=True)
class Received:
    """One instance filed in the store.

    Attributes:
        study_uid: StudyInstanceUID (the study's folder name).
        series_uid: SeriesInstanceUID.
        sop_uid: SOPInstanceUID.
        sop_class: SOP Class UID.
        calling_ae: AE title of the sender.
        size: Bytes written.
    """

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class: str
    calling_ae: str
    size: int


@dataclass(frozen=True)
class Refused:
    """An instance or association the node turned away, and why (for logs and the panel)."""

    calling_ae: str
    status: int
    reason: str


InstanceCallback = Callable[[Received], None]
RefusedCallback = Callable[[Refused], None]


class _BoundedSocket(AssociationSocket):
    """An association socket with two read limits; past either, the association is dropped.

    - ``limit``: longest PDU. pynetdicom reads a PDU's announced length in full before decoding
      it, so a peer claiming 2 GB would make it buffer 2 GB.
    - ``message_limit``: bytes between two completed C-STORE messages (``reset`` is called by the
      store handler). pynetdicom keeps a message's fragments in memory until the last one, so a
      peer could otherwise stream one endless dataset.

    A refused read returns nothing, which pynetdicom treats as a closed connection (Evt17): that
    association ends, the others go on.
    """

    limit: int = 0
    message_limit: int = 0
    since_reset: int = 0

    def reset(self) -> None:
        """A message is complete: start counting again."""
        self.since_reset = 0

    def recv(self, nr_bytes: int) -> bytearray:
        if self.limit and nr_bytes > self.limit:
            return self._drop(f"PDU of {nr_bytes} bytes announced (limit {self.limit})")
        self.since_reset += nr_bytes
        if self.message_limit and self.since_reset > self.message_limit:
            return self._drop(f"message over {self.message_limit} bytes")
        return super().recv(nr_bytes)

    def _drop(self, reason: str) -> bytearray:
        LOGGER.warning("%s: dropping the association", reason)
        self.close()
        return bytearray()


class _BoundedRequestHandler(RequestHandler):
    """Pynetdicom's request handler with a :class:`_BoundedSocket` per association."""

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        sock: Any = assoc.dul.socket
        # Same object, bounded reads: a second socket object would queue a second "connection
        # open" event in pynetdicom's state machine.
        sock.__class__ = _BoundedSocket
        sock.limit = getattr(self.server, "elnet_pdu_limit", 0)
        sock.message_limit = getattr(self.server, "elnet_message_limit", 0)
        return assoc


class Receiver:
    """A DICOM storage SCP writing into a :class:`~napari_elnet.node.store.Store`.

    Args:
        config: AE title, address, allow list and limits.
        store: Where instances go.
        on_instance: Called on the association's thread after each instance is stored (keep it
            quick: put the event on a queue).
        on_refused: Called for each instance refused with a failure status.
    """

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        on_instance: InstanceCallback | None = None,
        on_refused: RefusedCallback | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._on_instance = on_instance
        self._on_refused = on_refused
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadedAssociationServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port listened on (the real one when the config asked for port 0)."""
        if self._server is None:
            return self.config.port
        return int(self._server.server_address[1])

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def start(self) -> None:
        """Bind the port and serve on a background thread (returns at once).

        Raises:
            OSError: The port cannot be bound (in use, or no permission).
        """
        if self._server is not None:
            return
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = self.config.max_pdu
        ae.maximum_associations = self.config.max_associations
        ae.network_timeout = self.config.network_timeout
        ae.acse_timeout = self.config.network_timeout
        ae.dimse_timeout = self.config.network_timeout
        ae.require_calling_aet = list(self.config.allow)
        ae.supported_contexts = acceptor_contexts()
        handlers: list[Any] = [(evt.EVT_C_STORE, self.handle_store)]
        server = ae.make_server(
            (self.config.host, self.config.port),
            evt_handlers=handlers,
            server_class=ThreadedAssociationServer,
            request_handler=_BoundedRequestHandler,
        )
        server.elnet_pdu_limit = self.config.max_pdu + _PDU_SLACK  # type: ignore[attr-defined]
        server.elnet_message_limit = self.config.max_study_bytes + _MESSAGE_SLACK  # type: ignore[attr-defined]
        server.daemon_threads = True
        ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"elnet-node-{self.port}", daemon=True
        )
        self._thread.start()
        LOGGER.info(
            "DICOM node %s listening on %s:%d", self.config.ae_title, self.config.host, self.port
        )

    def stop(self) -> None:
        """Stop listening and abort the associations still open; returns when the server is down."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        for assoc in list(server.active_associations):
            assoc.abort()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_store(self, event: Any) -> int:
        """EVT_C_STORE (also of C-GET sub-operations): parse, check, write atomically, acknowledge.

        Never raises: every problem becomes a failure status.
        """
        calling = str(event.assoc.requestor.ae_title).strip()
        socket = getattr(event.assoc.dul, "socket", None)
        if isinstance(socket, _BoundedSocket):
            socket.reset()
        try:
            status, reason = self._store(event, calling)
        except Exception as exc:  # a bad dataset must never take the server down
            LOGGER.exception("C-STORE from %s failed", calling)
            status, reason = STATUS_CANNOT_UNDERSTAND, f"{type(exc).__name__}: {exc}"
        if status != STATUS_SUCCESS:
            LOGGER.warning("C-STORE from %s refused (0x%04X): %s", calling, status, reason)
            if self._on_refused is not None:
                self._on_refused(Refused(calling, status, reason))
        return status

    def _store(self, event: Any, calling: str) -> tuple[int, str]:
        """(status, reason) of one C-STORE request."""
        try:
            # The decode reads every element's tag, VR and length (values stay raw): pydicom
            # only warns on a truncated stream, a missing delimiter or a VR encoding that is not
            # the negotiated one, and such a file would be stored broken, so warnings fail here.
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                dataset = event.dataset
            problem = _truncated_element(dataset)
        except Exception as exc:
            return STATUS_CANNOT_UNDERSTAND, f"dataset does not parse: {type(exc).__name__}: {exc}"
        if problem:
            return STATUS_CANNOT_UNDERSTAND, f"dataset does not parse: {problem}"
        request = event.request
        try:
            study = check_uid(dataset.get("StudyInstanceUID"), "StudyInstanceUID")
            series = check_uid(dataset.get("SeriesInstanceUID"), "SeriesInstanceUID")
            sop = check_uid(request.AffectedSOPInstanceUID, "AffectedSOPInstanceUID")
        except UidError as exc:
            return STATUS_DATASET_MISMATCH, str(exc)
        if str(dataset.get("SOPInstanceUID", "")).strip() != sop:
            return STATUS_DATASET_MISMATCH, "SOPInstanceUID differs from the request's"
        data = event.encoded_dataset()
        target = self.store.instance_path(study, series, sop)
        with self._lock:
            used = self._bytes.get(study)
            if used is None:
                used = self.store.study_bytes(study) if self.store.study_dir(study).is_dir() else 0
            replaced = target.stat().st_size if target.is_file() else 0  # a resent instance
            added = len(data) - replaced
            if used + added > self.config.max_study_bytes:
                self._bytes[study] = used
                return (
                    STATUS_OUT_OF_RESOURCES,
                    f"study would exceed {self.config.max_study_bytes} bytes",
                )
            self._bytes[study] = used + added
        try:
            self.store.write(study, series, sop, data)
        except OSError as exc:
            with self._lock:
                self._bytes[study] -= added
            return STATUS_OUT_OF_RESOURCES, f"cannot write the instance: {exc}"
        if self._on_instance is not None:
            sop_class = str(request.AffectedSOPClassUID)
            self._on_instance(Received(study, series, sop, sop_class, calling, len(data)))
        return STATUS_SUCCESS, ""


_UNDEFINED_LENGTH = 0xFFFFFFFF


def _truncated_element(dataset: Any) -> str:
    """The first top-level element whose value is shorter than its declared length ("" if none).

    pydicom keeps a short last value without a word (e.g. Pixel Data claiming 2 GB in a 20-byte
    message); such an instance is not what the sender meant to store.
    """
    from pydicom.dataelem import RawDataElement

    for tag in dataset.keys():  # noqa: SIM118 (iterating a Dataset would convert every value)
        raw = dataset.get_item(tag)
        if not isinstance(raw, RawDataElement) or raw.length == _UNDEFINED_LENGTH:
            continue
        got = 0 if raw.value is None else len(raw.value)
        if got != raw.length:
            return f"element {tag} declares {raw.length} bytes, the message holds {got}"
    return ""
